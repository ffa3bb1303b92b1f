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
var s = "exploring needs a live kernel: this output was saved with the notebook and the kernel that made it is gone; run the cell again with a kernel to explore";
async function c(e) {
	let t = e.get("_comm_id"), n = e.widget_manager;
	if (typeof t != "string" || !t || typeof n?.get_model != "function") return !0;
	try {
		return (await n.get_model(t)).comm_live !== !1;
	} catch {
		return !0;
	}
}
function l(e) {
	let t = {
		v: 1,
		run_id: e.run_id,
		request_id: e.request_id
	};
	return e.type === "explore_request" ? {
		...t,
		type: "explore_answer",
		status: "error",
		branch_node_id: null,
		error: s
	} : {
		...t,
		type: "detail_answer",
		status: "error",
		detail: null,
		error: s
	};
}
function u(e, t) {
	try {
		e.send({
			rudder: "client",
			message: t
		});
	} catch {}
}
function d({ model: n, el: r }) {
	let i = a(n), s = document.createElement("iframe");
	s.setAttribute("sandbox", "allow-scripts"), s.setAttribute("title", "rudder run view"), s.style.cssText = "width: 100%; height: 80px; border: 0; display: block;", s.srcdoc = String(n.get("_page") ?? ""), r.append(s);
	let d = !1, f = (e) => s.contentWindow?.postMessage(JSON.stringify(e), "*"), p = (t) => {
		d && f({
			envelope: e,
			kind: "messages",
			messages: t
		});
	}, m = (t, r) => {
		let a = i.after(t);
		a.messages.length && f({
			envelope: e,
			kind: "messages",
			messages: a.messages
		}), a.complete && i.size !== 0 || u(n, r);
	}, h = (r) => {
		if (r.source !== s.contentWindow || !t(r.data)) return;
		let i = r.data;
		if (i.kind === "resize") s.style.height = `${Math.max(40, Math.min(i.height, 4e3))}px`;
		else if (i.kind === "client") {
			let t = i.message;
			t.type === "client_ready" ? (d = !0, f({
				envelope: e,
				kind: "theme",
				dark: o()
			}), m(t.last_seq ?? -1, t)) : t.type === "replay_request" ? m(t.after_seq, t) : c(n).then((r) => {
				r ? u(n, t) : d && f({
					envelope: e,
					kind: "answer",
					answer: l(t)
				});
			});
		}
	};
	window.addEventListener("message", h), i.listeners.add(p);
	let g = (t) => {
		d && f({
			envelope: e,
			kind: "answer",
			answer: t
		});
	};
	i.answerListeners.add(g);
	let _ = new MutationObserver(() => {
		d && f({
			envelope: e,
			kind: "theme",
			dark: o()
		});
	});
	return _.observe(document.body, {
		attributes: !0,
		attributeFilter: ["class", "data-jp-theme-light"]
	}), () => {
		window.removeEventListener("message", h), i.listeners.delete(p), i.answerListeners.delete(g), _.disconnect(), s.remove();
	};
}
var f = {
	initialize({ model: e }) {
		let t = a(e);
		return () => t.release();
	},
	render: d
};
export { s as KERNEL_GONE, n as MAX_HELD, r as Store, f as default, l as kernelGoneAnswer, c as kernelHolds, i as stores };
