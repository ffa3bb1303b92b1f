// src/messages.ts
var e = "rudder-view";
function t(e) {
	return typeof e == "object" && !!e && e.envelope === "rudder-view" && typeof e.kind == "string";
}
// src/widget.ts
var n = class {
	bySeq = /* @__PURE__ */ new Map();
	listeners = /* @__PURE__ */ new Set();
	answerListeners = /* @__PURE__ */ new Set();
	constructor(e) {
		let t = e.get("_final");
		typeof t == "string" && t && this.add(JSON.parse(t));
	}
	add(e) {
		for (let t of e) t.type === "reset" ? this.bySeq.clear() : this.bySeq.set(t.seq, t);
		for (let t of this.listeners) t(e);
	}
	after(e) {
		let t = [...this.bySeq.keys()].filter((t) => t > e).sort((e, t) => e - t), n = e + 1, r = !0;
		for (let e of t) e !== n && (r = !1), n = e + 1;
		return {
			messages: t.map((e) => this.bySeq.get(e)),
			complete: r
		};
	}
	get size() {
		return this.bySeq.size;
	}
}, r = /* @__PURE__ */ new Map();
function i(e) {
	let t = String(e.get("run_id") ?? ""), i = r.get(t);
	if (i === void 0) {
		let a = new n(e);
		r.set(t, a), e.on("msg:custom", (e) => {
			if (e?.rudder === "messages" && typeof e.json == "string") a.add(JSON.parse(e.json));
			else if (e?.rudder === "answer" && typeof e.json == "string") {
				let t = JSON.parse(e.json);
				for (let e of a.answerListeners) e(t);
			}
		}), i = a;
	}
	return i;
}
function a() {
	let e = document.body;
	return e.dataset.jpThemeLight === void 0 ? e.classList.contains("vscode-dark") || e.classList.contains("vscode-high-contrast") ? !0 : e.classList.contains("vscode-light") ? !1 : window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? !1 : e.dataset.jpThemeLight === "false";
}
function o(e, t) {
	try {
		e.send({
			rudder: "client",
			message: t
		});
	} catch {}
}
function s({ model: n, el: r }) {
	let s = i(n), c = document.createElement("iframe");
	c.setAttribute("sandbox", "allow-scripts"), c.setAttribute("title", "rudder run view"), c.style.cssText = "width: 100%; height: 80px; border: 0; display: block;", c.srcdoc = String(n.get("_page") ?? ""), r.append(c);
	let l = !1, u = (e) => c.contentWindow?.postMessage(e, "*"), d = (t) => {
		l && u({
			envelope: e,
			kind: "messages",
			messages: t
		});
	}, f = (t, r) => {
		let i = s.after(t);
		i.messages.length && u({
			envelope: e,
			kind: "messages",
			messages: i.messages
		}), i.complete && s.size !== 0 || o(n, r);
	}, p = (r) => {
		if (r.source !== c.contentWindow || !t(r.data)) return;
		let i = r.data;
		if (i.kind === "resize") c.style.height = `${Math.max(40, Math.min(i.height, 4e3))}px`;
		else if (i.kind === "client") {
			let t = i.message;
			t.type === "client_ready" ? (l = !0, u({
				envelope: e,
				kind: "theme",
				dark: a()
			}), f(t.last_seq ?? -1, t)) : t.type === "replay_request" ? f(t.after_seq, t) : o(n, t);
		}
	};
	window.addEventListener("message", p), s.listeners.add(d);
	let m = (t) => {
		l && u({
			envelope: e,
			kind: "answer",
			answer: t
		});
	};
	s.answerListeners.add(m);
	let h = new MutationObserver(() => {
		l && u({
			envelope: e,
			kind: "theme",
			dark: a()
		});
	});
	return h.observe(document.body, {
		attributes: !0,
		attributeFilter: ["class", "data-jp-theme-light"]
	}), () => {
		window.removeEventListener("message", p), s.listeners.delete(d), s.answerListeners.delete(m), h.disconnect(), c.remove();
	};
}
var c = {
	initialize({ model: e }) {
		i(e);
	},
	render: s
};
export { c as default };
