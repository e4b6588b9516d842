"use strict";
// The interactive report: everything follows one clock, the media's currentTime
// (a still image has no media clock: the timeline sets it). `#t=SECONDS` in the
// URL seeks on load; window.sgdtamReport exposes seek() and state() for tests.
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const duration = Math.max(data.duration || 0, 1e-3);
  const SVG = "http://www.w3.org/2000/svg";
  const POLARITY = { negative: "var(--negative)", neutral: "var(--neutral)", positive: "var(--positive)" };
  const STATE = { observed: "var(--observed)", generated: "var(--generated)", missing: "var(--missing)" };
  const MODALITIES = ["text", "audio", "video"];
  const W = 1000, LEFT = 96, RIGHT = 10, PLOT = W - LEFT - RIGHT;
  let media = null;
  let now = 0;
  let cursor = null;
  let wordNodes = [];
  let lineNodes = [];

  function node(tag, attrs, text) {
    const n = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => n.setAttribute(k, v));
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function shape(tag, attrs, parent) {
    const n = document.createElementNS(SVG, tag);
    Object.entries(attrs).forEach(([k, v]) => n.setAttribute(k, v));
    if (parent) parent.appendChild(n);
    return n;
  }
  function tip(n, text) { shape("title", {}, n).textContent = text; return n; }
  const x = (t) => LEFT + (Math.min(Math.max(t, 0), duration) / duration) * PLOT;
  const signed = (v) => (v === null || v === undefined ? "n/a" : (v >= 0 ? "+" : "") + v.toFixed(2));
  const secs = (t) => t.toFixed(2) + " s";

  // "" when the analysis says nothing about validation (older results)
  function validation(s) {
    if (s.validated === false) return "UNVALIDATED route " + s.pattern + ": the checkpoint was never checked on it";
    if (s.validated === true) return "validated route " + s.pattern +
      (typeof s.dev_accuracy === "number" ? " (dev accuracy " + s.dev_accuracy.toFixed(2) + ")" : "");
    return "";
  }
  function validationNode(s) {
    const text = validation(s);
    return node("span", { class: s.validated === false ? "unvalidated" : "reason" }, text ? " · " + text : "");
  }
  function scoreLine(s) {
    const conf = s.confidence === null || s.confidence === undefined ? "" : " (confidence " + s.confidence.toFixed(2) + ")";
    return signed(s.score) + " " + s.polarity + conf;
  }

  // --- media -------------------------------------------------------------------
  function setupMedia() {
    const source = document.getElementById("report-media");
    const kind = source.dataset.kind;
    const bytes = Uint8Array.from(atob(source.textContent.trim()), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: source.dataset.mime }));
    const box = document.getElementById("media");
    if (kind === "image") {
      box.appendChild(node("img", { src: url, alt: "the analysed image" }));
      return null;
    }
    const element = node(kind, { controls: "", preload: "auto", src: url });
    box.appendChild(element);
    if (kind === "audio" && data.waveform) box.appendChild(waveform(data.waveform));
    ["timeupdate", "seeked", "seeking"].forEach((e) => element.addEventListener(e, () => render(element.currentTime)));
    element.addEventListener("play", () => requestAnimationFrame(follow));
    return element;
  }
  function follow() {
    if (!media || media.paused || media.ended) return;
    render(media.currentTime);
    requestAnimationFrame(follow);
  }
  function waveform(wave) {
    const canvas = node("canvas", { width: 1000, height: 90, title: "waveform: click to seek" });
    const g = canvas.getContext("2d");
    const span = Math.max(wave.end - wave.start, 1e-3);
    g.fillStyle = "#52606d";
    wave.peaks.forEach((p, i) => {
      const t0 = wave.start + (i / wave.peaks.length) * span;
      const px = ((t0 / duration) * canvas.width);
      g.fillRect(px, 45 - p * 44, Math.max(canvas.width / wave.peaks.length, 1), Math.max(p * 88, 1));
    });
    canvas.addEventListener("click", (e) => {
      const r = canvas.getBoundingClientRect();
      seek(((e.clientX - r.left) / r.width) * duration);
    });
    return canvas;
  }

  // --- timeline ----------------------------------------------------------------
  function buildTimeline() {
    const lanes = [];
    let y = 8;
    const sentiment = { top: y, height: 120 }; y += 124;
    const probs = { top: y, height: 12 }; y += 20;
    MODALITIES.forEach((m) => { lanes.push({ name: m, top: y, height: 14 }); y += 18; });
    const face = { top: y + 4, height: 24 }; y += 32;
    const voice = { top: y, height: 28 }; y += 34;
    const axis = y; y += 18;
    const svg = shape("svg", { viewBox: "0 0 " + W + " " + y, role: "img", "aria-label": "sentiment timeline" });
    const yScore = (v) => sentiment.top + sentiment.height / 2 - (v / 3) * (sentiment.height / 2);
    [-3, -2, -1, 0, 1, 2, 3].forEach((v) => {
      shape("line", { x1: LEFT, x2: W - RIGHT, y1: yScore(v), y2: yScore(v), stroke: v === 0 ? "#9aa5b1" : "#eef2f6" }, svg);
      shape("text", { x: LEFT - 6, y: yScore(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#616e7c" }, svg)
        .textContent = (v > 0 ? "+" : "") + v;
    });
    label(svg, "sentiment", sentiment.top + 12);
    const points = [];
    data.segments.forEach((s, i) => {
      const x0 = x(s.start), x1 = Math.max(x(s.end), x0 + 1);
      if (s.score !== null) {
        const top = Math.min(yScore(s.score), yScore(0));
        tip(shape("rect", { x: x0, width: x1 - x0, y: top, height: Math.max(Math.abs(yScore(s.score) - yScore(0)), 1),
          fill: POLARITY[s.polarity] || "#34495e", "fill-opacity": 0.25 + 0.75 * (s.confidence === null ? 1 : s.confidence),
          class: "segment", "data-index": i }, svg), "segment " + (i + 1) + ": " + scoreLine(s));
        shape("line", { x1: x0, x2: x1, y1: yScore(s.score), y2: yScore(s.score), stroke: "#1f2933", "stroke-width": 2 }, svg);
        points.push(((x0 + x1) / 2).toFixed(1) + "," + yScore(s.score).toFixed(1));
      }
      let base = probs.top + probs.height;
      ["negative", "neutral", "positive"].forEach((c) => {
        const p = s.probabilities ? s.probabilities[c] || 0 : 0;
        base -= p * probs.height;
        tip(shape("rect", { x: x0, width: x1 - x0, y: base, height: p * probs.height, fill: POLARITY[c] }, svg),
          c + " " + p.toFixed(2));
      });
      lanes.forEach((lane) => {
        const a = s.availability[lane.name];
        tip(shape("rect", { x: x0, width: x1 - x0, y: lane.top, height: lane.height, fill: STATE[a.state], rx: 2 }, svg),
          lane.name + ": " + a.state + (a.reason ? " (" + a.reason + ")" : ""));
      });
    });
    if (points.length > 1) shape("polyline", { points: points.join(" "), fill: "none", stroke: "#1f2933", "stroke-dasharray": "3 3" }, svg);
    label(svg, "p(class)", probs.top + 10);
    lanes.forEach((lane) => label(svg, lane.name, lane.top + 11));
    track(svg, data.tracks.face, face, "#8e44ad", "face");
    track(svg, data.tracks.voice, voice, "#16a085", "voice");
    for (let i = 0; i <= 10; i++) {
      const t = (duration * i) / 10;
      shape("line", { x1: x(t), x2: x(t), y1: axis, y2: axis + 4, stroke: "#616e7c" }, svg);
      shape("text", { x: x(t), y: axis + 15, "text-anchor": "middle", "font-size": 11, fill: "#616e7c" }, svg).textContent = t.toFixed(1);
    }
    cursor = shape("line", { x1: LEFT, x2: LEFT, y1: 2, y2: axis, stroke: "var(--now)", "stroke-width": 2, id: "cursor" }, svg);
    svg.addEventListener("click", (e) => {
      const r = svg.getBoundingClientRect();
      seek((((e.clientX - r.left) / r.width) * W - LEFT) / PLOT * duration);
    });
    document.getElementById("timeline").appendChild(svg);
  }
  function label(svg, text, y) {
    shape("text", { x: 4, y: y, "font-size": 12, fill: "#3e4c59" }, svg).textContent = text;
  }
  function track(svg, points, lane, colour, name) {
    label(svg, name, lane.top + lane.height / 2 + 4);
    if (!points || !points.length) {
      shape("text", { x: LEFT + 4, y: lane.top + lane.height / 2 + 4, "font-size": 11, fill: "#9aa5b1" }, svg).textContent = "no " + name + " track";
      return;
    }
    const top = Math.max(...points.map((p) => p[1]), 1e-9);
    const line = points.map((p) => x(p[0]).toFixed(1) + "," + (lane.top + lane.height - (p[1] / top) * lane.height).toFixed(1));
    tip(shape("polyline", { points: line.join(" "), fill: "none", stroke: colour, "stroke-width": 1.5 }, svg),
      name === "face" ? "face found (1) or not (0) per sampled frame" : "voice loudness, scaled to its maximum");
  }

  // --- transcript --------------------------------------------------------------
  function buildTranscript() {
    const box = document.getElementById("transcript");
    if (!data.words.length) {
      box.appendChild(node("p", { class: "hint" }, data.modalities.text.state === "observed"
        ? "no words" : "no transcript: " + (data.modalities.text.reason || "no speech")));
      return;
    }
    const lines = new Map();
    data.words.forEach((w, i) => {
      const segment = data.segments.findIndex((s) => s.start <= w.start && w.start < s.end);
      if (!lines.has(segment)) {
        const p = node("p", { "data-segment": segment });
        const stamp = node("span", { class: "stamp" }, secs(segment >= 0 ? data.segments[segment].start : w.start));
        stamp.addEventListener("click", () => seek(segment >= 0 ? data.segments[segment].start : w.start));
        p.appendChild(stamp);
        lines.set(segment, p);
        box.appendChild(p);
      }
      const span = node("span", { class: "word" + (w.estimated ? " estimated" : ""), "data-start": w.start, "data-end": w.end,
        title: secs(w.start) + " to " + secs(w.end) + (w.estimated ? " (time estimated)" : "") }, w.text);
      span.addEventListener("click", () => seek(w.start));
      lines.get(segment).append(span, " ");
      wordNodes.push([w, span]);
    });
    lineNodes = [...lines.entries()];
  }

  // --- the clip's modalities ---------------------------------------------------
  function buildSummary() {
    const o = data.overall;
    const overall = document.getElementById("overall");
    overall.textContent = "overall " + scoreLine(o) + " · " + secs(data.duration) +
      " · " + data.segments.length + " segment" + (data.segments.length === 1 ? "" : "s") + " · route " + (o.route || "none");
    overall.appendChild(validationNode(o));
    const list = document.getElementById("modalities");
    MODALITIES.forEach((m) => {
      const entry = data.modalities[m];
      const li = node("li");
      li.append(node("strong", {}, m + " "), node("span", { class: "chip " + entry.state }, entry.state), " ",
        node("span", { class: "reason" }, entry.detail));
      list.appendChild(li);
    });
    document.getElementById("provenance").textContent = "checkpoint " + data.checkpoint + " · media: " + data.media +
      " · sgdtam-pipe " + data.tool_version + ", schema " + data.schema_version;
  }

  // --- following the clock -----------------------------------------------------
  function render(t) {
    now = Math.min(Math.max(Number(t) || 0, 0), duration);
    document.body.dataset.time = now.toFixed(3);
    document.getElementById("clock").textContent = "t = " + now.toFixed(3) + " s";
    if (cursor) { cursor.setAttribute("x1", x(now)); cursor.setAttribute("x2", x(now)); }
    const index = data.segments.findIndex((s) => s.start <= now && now < s.end);
    showSegment(index);
    let current = null;
    wordNodes.forEach(([w, span]) => {
      const on = w.start <= now && now < w.end;
      span.classList.toggle("current", on);
      span.classList.toggle("spoken", w.end <= now);
      if (on) current = span;
    });
    lineNodes.forEach(([segment, p]) => p.classList.toggle("current-segment", segment === index && index >= 0));
    if (current) {
      const box = document.getElementById("transcript");
      const top = current.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 20) box.scrollTop = top - box.clientHeight / 3;
    }
  }
  function showSegment(index) {
    const panel = document.getElementById("segment-now");
    if (Number(panel.dataset.index) === index && panel.childNodes.length) return;
    panel.dataset.index = index;
    panel.replaceChildren();
    if (index < 0) {
      panel.appendChild(node("p", { class: "hint" }, "no segment at this time (no speech here, or outside the analysed span)"));
      return;
    }
    const s = data.segments[index];
    panel.append(node("div", { class: "score", style: "color:" + (POLARITY[s.polarity] || "inherit") }, signed(s.score) + " " + s.polarity),
      node("div", {}, "segment " + (index + 1) + " of " + data.segments.length + ": " + secs(s.start) + " to " + secs(s.end)
        + (s.confidence === null ? "" : " · confidence " + s.confidence.toFixed(2))));
    if (s.probabilities) {
      const bar = node("div", { class: "probs", title: Object.entries(s.probabilities).map(([k, v]) => k + " " + v.toFixed(2)).join(", ") });
      ["negative", "neutral", "positive"].forEach((c) => bar.appendChild(node("span", {
        style: "width:" + (100 * (s.probabilities[c] || 0)).toFixed(1) + "%;background:" + POLARITY[c] })));
      panel.appendChild(bar);
    }
    if (s.text) panel.appendChild(node("p", { class: "said" }, "“" + s.text + "”"));
    MODALITIES.forEach((m) => {
      const a = s.availability[m];
      const row = node("div");
      row.append(node("span", { class: "chip " + a.state }, m + ": " + a.state), node("span", { class: "reason" }, a.reason || ""));
      panel.appendChild(row);
    });
    const route = node("div", { class: "reason" }, "route " + s.route);
    route.appendChild(validationNode(s));
    panel.appendChild(route);
  }
  function seek(t) {
    const target = Math.min(Math.max(Number(t) || 0, 0), duration);
    render(target);
    if (!media) return Promise.resolve(target);
    return new Promise((resolve) => {
      const done = () => { render(media.currentTime); resolve(media.currentTime); };
      const go = () => { media.addEventListener("seeked", done, { once: true }); media.currentTime = target; };
      if (media.readyState >= 1) go(); else media.addEventListener("loadedmetadata", go, { once: true });
    });
  }
  function fromHash() {
    const match = /(?:^#|&)t=([0-9.]+)/.exec(location.hash);
    return match ? seek(parseFloat(match[1])) : Promise.resolve(now);
  }

  buildSummary();
  buildTimeline();
  buildTranscript();
  media = setupMedia();
  window.addEventListener("hashchange", fromHash);
  window.sgdtamReport = {
    seek: seek,
    ready: fromHash(),
    state: () => {
      const word = document.querySelector(".word.current");
      const panel = document.getElementById("segment-now");
      return { time: now, word: word ? word.textContent : null, segment: Number(panel.dataset.index),
        segmentText: panel.textContent, mediaTime: media ? media.currentTime : null };
    },
  };
})();
