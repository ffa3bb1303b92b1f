// src/messages.ts
var e = "rudder-view";
function t(e) {
	return typeof e == "object" && !!e && e.envelope === "rudder-view" && typeof e.kind == "string";
}
// src/widget.ts
var n = 1e4, r = class {
	bySeq = /* @__PURE__ */ new Map();
	listeners = /* @__PURE__ */ new Set();
	answerListeners = /* @__PURE__ */ new Set();
	constructor(e) {
		let t = e.get("_final");
		typeof t == "string" && t && this.add(JSON.parse(t));
	}
	add(e) {
		for (let t of e) t.type === "reset" ? this.bySeq.clear() : this.bySeq.set(t.seq, t);
		if (this.bySeq.size > 1e4) {
			let e = [...this.bySeq.keys()].sort((e, t) => e - t);
			for (let t of e.slice(0, e.length - n / 2)) this.bySeq.delete(t);
		}
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
	release = () => {};
}, i = /* @__PURE__ */ new Map();
function a(e) {
	let t = String(e.get("run_id") ?? ""), n = i.get(t);
	if (n === void 0) {
		let a = new r(e);
		i.set(t, a);
		let o = (e) => {
			if (e?.rudder === "messages" && typeof e.json == "string") a.add(JSON.parse(e.json));
			else if (e?.rudder === "answer" && typeof e.json == "string") {
				let t = JSON.parse(e.json);
				for (let e of a.answerListeners) e(t);
			}
		};
		e.on("msg:custom", o), a.release = () => {
			e.off("msg:custom", o), i.get(t) === a && i.delete(t);
		}, n = a;
	}
	return n;
}
function o() {
	let e = document.body;
	return e.dataset.jpThemeLight === void 0 ? e.classList.contains("vscode-dark") || e.classList.contains("vscode-high-contrast") ? !0 : e.classList.contains("vscode-light") ? !1 : window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? !1 : e.dataset.jpThemeLight === "false";
}
function s(e, t) {
	try {
		e.send({
			rudder: "client",
			message: t
		});
	} catch {}
}
function c({ model: n, el: r }) {
	let i = a(n), c = document.createElement("iframe");
	c.setAttribute("sandbox", "allow-scripts"), c.setAttribute("title", "rudder run view"), c.style.cssText = "width: 100%; height: 80px; border: 0; display: block;", c.srcdoc = String(n.get("_page") ?? ""), r.append(c);
	let l = !1, u = (e) => c.contentWindow?.postMessage(JSON.stringify(e), "*"), d = (t) => {
		l && u({
			envelope: e,
			kind: "messages",
			messages: t
		});
	}, f = (t, r) => {
		let a = i.after(t);
		a.messages.length && u({
			envelope: e,
			kind: "messages",
			messages: a.messages
		}), a.complete && i.size !== 0 || s(n, r);
	}, p = (r) => {
		if (r.source !== c.contentWindow || !t(r.data)) return;
		let i = r.data;
		if (i.kind === "resize") c.style.height = `${Math.max(40, Math.min(i.height, 4e3))}px`;
		else if (i.kind === "client") {
			let t = i.message;
			t.type === "client_ready" ? (l = !0, u({
				envelope: e,
				kind: "theme",
				dark: o()
			}), f(t.last_seq ?? -1, t)) : t.type === "replay_request" ? f(t.after_seq, t) : s(n, t);
		}
	};
	window.addEventListener("message", p), i.listeners.add(d);
	let m = (t) => {
		l && u({
			envelope: e,
			kind: "answer",
			answer: t
		});
	};
	i.answerListeners.add(m);
	let h = new MutationObserver(() => {
		l && u({
			envelope: e,
			kind: "theme",
			dark: o()
		});
	});
	return h.observe(document.body, {
		attributes: !0,
		attributeFilter: ["class", "data-jp-theme-light"]
	}), () => {
		window.removeEventListener("message", p), i.listeners.delete(d), i.answerListeners.delete(m), h.disconnect(), c.remove();
	};
}
var l = {
	initialize({ model: e }) {
		let t = a(e);
		return () => t.release();
	},
	render: c
};
export { n as MAX_HELD, r as Store, l as default, i as stores };
