// Shipyard dashboard: live deployment charts and the rollout buttons.
// Our own code, served from the package; the page's CSP allows no other script.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One small line chart: series is {label: [[t, value], ...]}.
  function chart(title, series, unit) {
    const w = 380, h = 170, left = 46, right = 10, top = 22, bottom = 22;
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": title });
    svg.appendChild(el("text", { x: left, y: 14, class: "title" }, title));
    const points = Object.values(series).flat().filter((p) => p[1] !== null && isFinite(p[1]));
    if (!points.length) {
      svg.appendChild(el("text", { x: left, y: h / 2, class: "axis" }, "waiting for traffic…"));
      return svg;
    }
    const ts = points.map((p) => p[0]), vs = points.map((p) => p[1]);
    const t0 = Math.min(...ts), t1 = Math.max(...ts, t0 + 1);
    let lo = Math.min(0, ...vs), hi = Math.max(...vs);
    if (hi - lo < 1e-9) hi = lo + 1;
    const x = (t) => left + ((w - left - right) * (t - t0)) / (t1 - t0);
    const y = (v) => top + (h - top - bottom) * (1 - (v - lo) / (hi - lo));
    svg.appendChild(el("line", { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom, class: "grid" }));
    svg.appendChild(el("text", { x: left - 4, y: top + 4, class: "axis", "text-anchor": "end" }, fmt(hi) + unit));
    svg.appendChild(el("text", { x: left - 4, y: h - bottom, class: "axis", "text-anchor": "end" }, fmt(lo) + unit));
    svg.appendChild(el("text", { x: w - right, y: h - 6, class: "axis", "text-anchor": "end" }, "last " + Math.round(t1 - t0) + " s"));
    Object.entries(series).forEach(([label, pts], k) => {
      const good = pts.filter((p) => p[1] !== null && isFinite(p[1]));
      const cls = "s" + (k % 8);
      if (good.length > 1) {
        svg.appendChild(el("polyline", { points: good.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "), class: "line " + cls }));
      } else if (good.length === 1) {
        svg.appendChild(el("circle", { cx: x(good[0][0]), cy: y(good[0][1]), r: 3, class: cls }));
      }
      svg.appendChild(el("text", { x: w - right, y: 14 + 12 * k, class: "legend " + cls, "text-anchor": "end" }, label));
    });
    return svg;
  }

  function fmt(v) {
    if (Math.abs(v) >= 100) return v.toFixed(0);
    if (Math.abs(v) >= 1) return v.toFixed(1);
    return v.toPrecision(2);
  }

  function series(traffic, key, scale) {
    const out = {};
    for (const [version, pts] of Object.entries(traffic || {})) {
      out["v" + version] = pts.map((p) => [p.t, p[key] === null ? null : p[key] * scale]);
    }
    return out;
  }

  async function refresh() {
    const sections = document.querySelectorAll("section.rollout");
    if (!sections.length) return;
    let data;
    try {
      const response = await fetch("/ui/api/deployments", { headers: { accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) {
      return; // the gateway restarting: try again on the next tick
    }
    const live = new Map(data.rollouts.map((r) => [r.model, r]));
    sections.forEach((section) => {
      const model = section.dataset.model;
      const rollout = live.get(model);
      const state = section.querySelector(".state");
      if (!rollout) {
        if (state) state.textContent = "ended";
        section.classList.add("ended");
      } else if (state) {
        state.textContent = rollout.state;
      }
      const split = section.querySelector("[data-split]");
      if (split && data.split[model] !== undefined) {
        // our own server's SVG for the split, built with escaping; parsed, not injected
        const doc = new DOMParser().parseFromString(data.split[model], "image/svg+xml");
        split.replaceChildren(document.importNode(doc.documentElement, true));
      }
      const holder = section.querySelector("[data-live]");
      if (holder && data.traffic) {
        const traffic = data.traffic[model] || {};
        holder.replaceChildren(
          chart("requests / s", series(traffic, "rps", 1), ""),
          chart("error rate", series(traffic, "error_rate", 100), "%"),
          chart("p99 latency", series(traffic, "p99_ms", 1), " ms"),
        );
        holder.dataset.updated = String(Date.now());
      }
    });
  }

  async function press(button) {
    const section = button.closest("section");
    const result = section ? section.querySelector(".result") : null;
    button.disabled = true;
    try {
      const response = await fetch(`/ui/api/rollouts/${encodeURIComponent(button.dataset.model)}/${button.dataset.action}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf() },
        body: "{}",
      });
      const body = await response.json().catch(() => ({}));
      if (result) result.textContent = response.ok ? `${button.dataset.action}: done (${body.state})` : `refused: ${body.error || response.status}`;
    } catch (e) {
      if (result) result.textContent = "the dashboard could not be reached";
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("button.action").forEach((b) => b.addEventListener("click", () => press(b)));
    if (document.querySelector("section.rollout")) {
      refresh();
      setInterval(refresh, 1500);
    }
  });
})();
