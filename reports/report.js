(() => {
  "use strict";
  const DATA = JSON.parse(document.getElementById("gridrun-data").textContent);
  const AXES = DATA.axes;
  const ITEMS = DATA.items;
  const RUNS = DATA.runs;
  const NRUNS = RUNS.length;
  const GROUPS = DATA.groups;
  const COMMON = DATA.common;
  const AX = new Map(AXES.map((a, i) => [a.id, i]));
  const MULTI = AXES.filter((a) => a.values.length > 1);
  const $grid = document.getElementById("grid");
  // the grid's controls: made by this script, so that a page read without it has no empty toolbar; a region
  // named for them (a landmark to jump to), which holds no navigation
  const $bar = document.createElement("section");
  Object.assign($bar, { id: "toolbar", className: "toolbar" });
  $bar.setAttribute("aria-label", "grid controls");
  $grid.before($bar);
  const $viewer = document.getElementById("viewer");
  const STATUS_ORDER = ["done", "running", "pending", "failed", "rejected", "unknown", "expired", "cancelled"];

  let reloading = DATA.live;  // while the run goes on, until its page stops moving (stopLive)
  let runGone = false;  // the live page decided its run no longer writes it (stopLive): nothing works on its jobs
  let reloadWanted = DATA.live;  // "reload while running" as it was when the page stopped: a page written there since keeps it
  const ui = {
    x: DATA.view.x, y: DATA.view.y, modes: Object.assign(Object.create(null), DATA.view.modes),
    status: "all", diff: false, size: null, loop: true, prompts: true, reload: DATA.live,
    figures: [],  // the runs whose header shows all its figures on a narrow screen ("all figures" opened)
  };

  // ---- helpers ---------------------------------------------------------------------------------
  // A bidirectional embedding, override or isolate (U+202E reverses what follows it) in a value or a prompt is
  // shown as the terminal shows it, written as in a string ("\u202e"), so that it cannot re-order the rest of a
  // job's key, its prompt or the values beside it.
  const BIDI = /[\u202a-\u202e\u2066-\u2069]/g;
  const vis = (t) => t.replace(BIDI, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  const SHOWN = new Set(["title", "aria-label", "alt"]);
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const k in props) {
        const v = props[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = vis(String(v));
        else if (k === "style") e.style.cssText = v;
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : SHOWN.has(k) ? vis(String(v)) : String(v));
      }
    }
    for (const c of kids) if (c !== null && c !== undefined && c !== false) e.append(typeof c === "string" ? vis(c) : c);
    return e;
  }
  const show = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : JSON.stringify(v));
  const USD = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 6 });
  const COUNT = new Intl.NumberFormat("en-US");  // counts as the page header writes them: 2,000
  const usd = (micros) => (micros === null || micros === undefined ? "–" : USD.format(micros / 1e6));
  // As the page header's figures (report.py's _duration): 59.4 s, 2 min 00 s, 1 h 02 min.
  const secs = (s) => {
    if (s === null || s === undefined) return "–";
    if (s < 59.95) return s.toFixed(1) + " s";
    const t = Math.round(s), m = Math.floor(t / 60);
    if (m < 60) return m + " min " + String(t % 60).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  };
  // Every time of the page (the header's and the details view's) on the reader's clock, naming its offset from
  // UTC at that moment: 2026-12-04 13:44:11 UTC-05:00; the title adds the zone's name and the time in UTC.
  const pad = (n) => String(n).padStart(2, "0");
  const ZONE = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; } })();
  function whenText(d) {
    const off = -d.getTimezoneOffset();
    const a = Math.abs(off);
    const zone = off === 0 ? "UTC" : "UTC" + (off < 0 ? "-" : "+") + pad(Math.floor(a / 60)) + ":" + pad(a % 60);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + zone;
  }
  function timeAt(el, d) {
    el.textContent = whenText(d);
    el.title = (ZONE ? ZONE + "; " : "") + d.toISOString().replace(/\.\d+Z$/, "Z");
    return el;
  }
  const when = (t) => {
    if (t === null || t === undefined) return "–";
    const d = new Date(t * 1000);
    return timeAt(h("time", { datetime: d.toISOString() }), d);
  };
  for (const el of document.querySelectorAll("header.top time[datetime]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) timeAt(el, d);
  }
  const groupOf = (state) => GROUPS[state] || state;
  // No job of a page whose runs have all stopped is running: those at the provider are the ones they left there.
  // (A live page whose run no longer writes it, `runGone`, says so too, as the page rebuilt after the run does.)
  const groupLabel = (g) => (g === "running" && (runGone || RUNS.every((r) => r.status !== "running")) ? "left in flight" : g);
  const stateLabel = (state) => (state === "planned" ? "pending" : state);
  // A compare's job that differs between its runs: parameters, outcome, take, or what was paid but for a video
  // one run cached from the other (`same`: the job unchanged).
  const differs = (it) => !!(it.diff || it.dstate || it.take || (it.dcost && !it.same));
  const axisOf = (id) => (id === null || id === undefined ? -1 : AX.get(id));
  const modeOf = (id) => ui.modes[id] || "group";
  const cmpArr = (a, b) => { for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };
  const uniqSorted = (xs) => Array.from(new Set(xs)).sort((a, b) => a - b);
  const param = (j, k) => (j && Object.prototype.hasOwnProperty.call(j.p, k) ? j.p[k] : COMMON[k]);
  // A long text (a prompt as an axis value, an error) cut to what a name or label can say: `n` characters as a
  // reader counts them (grapheme clusters where the browser tells them, else code points), never inside one, so
  // that neither half of an emoji, nor part of a family joined by ZWJs, is left before the "…". Only the start is
  // split up: a text of thousands of characters costs no more than a short one.
  const GRAPHEMES = typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  const chars = (s) => (GRAPHEMES ? Array.from(GRAPHEMES.segment(s), (g) => g.segment) : Array.from(s));
  const brief = (s, n) => {
    n = n || 60;
    if (s.length <= n) return s;
    let parts = chars(s.slice(0, 16 * n));
    if (parts.length <= n) parts = chars(s);  // a start of long clusters: the whole text, told whole
    return parts.length > n ? parts.slice(0, n - 1).join("") + "…" : s;
  };
  // An axis value as the heads, headings, options, cards and details show it. The jobs that have no such key (a
  // sweep without it; null in the axis, no value) read "(unset)"; a value that would read as nothing or as another
  // is quoted: the empty text, one with spaces at its ends (which the page would not show), the text "(unset)".
  // The values themselves stay as they are: the jobs are matched to them by index, never by this text.
  const UNSET = "(unset)";
  const valueText = (v) => (v === null ? UNSET : v === "" || v.trim() !== v || v === UNSET ? "\"" + v + "\"" : v);
  const unsetWhy = (i) => "not set: these jobs have no " + AXES[i].label + " key";
  const axisText = (i, v) => AXES[i].label + " = " + brief(valueText(AXES[i].values[v]));
  // An axis value in a head: the whole text in its title; the jobs without the key in italics, saying so.
  const valueSpan = (i, v, cls) => {
    const raw = AXES[i].values[v];
    return h("span", { class: cls + (raw === null ? " unset" : ""), dir: "auto",
      title: raw === null ? unsetWhy(i) : valueText(raw), text: valueText(raw) });
  };
  const hasParam = (j, k) => j && (Object.prototype.hasOwnProperty.call(j.p, k) || Object.prototype.hasOwnProperty.call(COMMON, k));

  // ---- view state in the URL hash, so a reload (the run filling in) keeps the layout ------------
  function readHash() {
    const q = new URLSearchParams(location.hash.slice(1));
    for (const side of ["x", "y"]) {
      if (!q.has(side)) continue;
      const v = q.get(side);
      if (v === "") ui[side] = null;
      else if (AX.has(v)) ui[side] = v;
    }
    if (ui.x !== null && ui.x === ui.y) ui.y = null;
    for (const [k, v] of q) if (k.startsWith("m.") && AX.has(k.slice(2))) ui.modes[k.slice(2)] = v;
    if (q.has("status")) ui.status = q.get("status");
    if (q.has("size")) ui.size = Math.min(640, Math.max(100, Number(q.get("size")) || 220));
    for (const k of ["diff", "loop", "prompts", "reload"]) if (q.has(k)) ui[k] = q.get(k) === "1";
    if (q.has("figures")) ui.figures = q.get("figures").split(".").filter((r) => r);
  }
  function writeHash() {
    const q = new URLSearchParams();
    q.set("x", ui.x || "");
    q.set("y", ui.y || "");
    for (const a of MULTI) if (a.id !== ui.x && a.id !== ui.y) q.set("m." + a.id, modeOf(a.id));
    if (ui.status !== "all") q.set("status", ui.status);
    if (ui.size !== null) q.set("size", String(ui.size));
    for (const k of ["diff", "loop", "prompts"]) q.set(k, ui[k] ? "1" : "0");
    q.set("reload", (runGone ? reloadWanted : ui.reload) ? "1" : "0");
    if (ui.figures.length) q.set("figures", ui.figures.join("."));
    try { history.replaceState(null, "", "#" + q.toString()); } catch (e) { /* some file:// contexts refuse */ }
  }

  // ---- lazy media: poster images first (native lazy loading), a <video> only while a cell is near the view ---
  // A browser allows a page only so many media players (Chromium ~1,000 on desktops, far fewer on phones), so
  // the grid keeps at most MAX_VIDEOS: a cell scrolled well out of view gives its player back (unless it is
  // playing), and past the cap the player used longest ago is taken back. A touch screen (a phone, a tablet)
  // gets fewer, well under a mobile browser's limit.
  // On a touch screen the grid scrolls in its own box (the stylesheet's `pointer: coarse`): what is in view is
  // what the window shows of that box.
  const COARSE = window.matchMedia("(pointer: coarse)");
  const MAX_VIDEOS = COARSE.matches ? 40 : 160;
  const gridScrolls = () => COARSE.matches && getComputedStyle($grid).overflowY !== "visible";
  // the part of the window the cells are seen in: the window, or on a touch screen the grid's box within it
  function viewBox() {
    const v = { top: 0, left: 0, bottom: window.innerHeight, right: window.innerWidth };
    if (!gridScrolls()) return v;
    const g = $grid.getBoundingClientRect();
    return { top: Math.max(v.top, g.top), left: Math.max(v.left, g.left), bottom: Math.min(v.bottom, g.bottom),
             right: Math.min(v.right, g.right) };
  }
  const live = new Map();       // thumb -> its <video>, the one used longest ago first
  const near = new Set();       // thumbs within the attach margin of the viewport
  let playSet = new Set();      // the videos the last ▶ asked to play
  // The ▶ of a grid, row or column that plays: its cells (`thumbs`), and when its videos started (`start`,
  // performance.now(); 0 until they do), the clock a cell that comes into view later joins them at.
  let session = null;
  const busy = (v) => playSet.has(v) && !v.paused;
  // Chromium refuses a player it cannot create (too many in the page) with code 4, like a missing file; only
  // the file's own failure marks the cell.
  const playerRefused = (err) => /media player|WebMediaPlayer/i.test((err && err.message) || "");
  const missing = (err) => !!err && (err.code === 2 || err.code === 4) && !playerRefused(err);
  function newVideo(thumb) {
    const v = h("video", { playsinline: true, preload: "metadata", "data-dur": thumb.dataset.dur,
      "aria-label": "video " + thumb.dataset.label });
    v.muted = true;
    v.loop = ui.loop;
    if (thumb.dataset.poster) {
      // A poster that does not load (deleted, a folder copied without its .jpg files) would leave the player an
      // empty box: without it the video's first frame shows. (The <video> tells nothing of its poster's failure.)
      v.poster = thumb.dataset.poster;
      const probe = new Image();
      probe.onerror = () => { noPoster(thumb); v.removeAttribute("poster"); };
      probe.onload = fileFound;
      probe.src = thumb.dataset.poster;
    }
    v.src = thumb.dataset.src;
    const img = thumb.querySelector("img");
    if (img) img.replaceWith(v); else thumb.append(v);
    return v;
  }
  function release(thumb) {
    const v = live.get(thumb) || thumb.querySelector("video");
    live.delete(thumb);
    if (!v) return;
    playSet.delete(v);
    v.dataset.released = "1";
    v.pause();
    v.removeAttribute("src");
    v.load();
    v.remove();
    v.dispatchEvent(new Event("released"));  // a ▶ waiting for it to load waits no more (`ready`)
    posterOf(thumb);
  }
  // Make room for one more player: the least recently used one that is neither playing nor in view goes
  // (with more cells in view than players, the cells past the cap keep their posters).
  function room() {
    if (live.size < MAX_VIDEOS) return true;
    for (const [t, v] of live) {
      // a playing cell of a ▶ that plays on joins in again when it is back in view
      if (near.has(t) || (busy(v) && !(session && session.thumbs.has(t)))) continue;
      release(t);
      return true;
    }
    return false;
  }
  let retryTimer = 0;
  function retryLater() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = 0;
      for (const t of near) if (!live.has(t) && t.isConnected) videoOf(t);
    }, 3000);
  }
  // The grid cell's <video>, made (and counted) when there is room for it; null when there is not.
  function videoOf(thumb) {
    let v = live.get(thumb);
    if (v) { live.delete(thumb); live.set(thumb, v); return v; }
    if (thumb.classList.contains("broken") || printing || !room()) return null;
    v = newVideo(thumb);
    live.set(thumb, v);
    v.addEventListener("loadedmetadata", fileFound, { once: true });
    v.addEventListener("error", () => {
      if (v.dataset.released) return;
      if (missing(v.error)) { fileLost(); markBroken(thumb); release(thumb); return; }
      release(thumb);  // no player to be had now: the poster stays, the video comes back later
      retryLater();
    });
    return v;
  }
  // The details view's player: not counted (there is one), and made room for when the page has none left.
  function viewerVideo(thumb) {
    const v = newVideo(thumb);
    v.controls = true;
    let retried = false;
    v.addEventListener("error", () => {
      if (!v.isConnected || v.dataset.released) return;
      if (missing(v.error)) { fileLost(); markBroken(thumb); return; }
      if (retried) return;
      retried = true;
      for (const [t, gv] of Array.from(live).slice(0, 20)) if (!busy(gv)) release(t);
      setTimeout(() => { if (v.isConnected) { v.src = thumb.dataset.src; v.play().catch(() => {}); } }, 100);
    });
    return v;
  }
  // A page opened apart from its folder (mailed on its own, opened from inside a zip) finds none of the files it
  // links to beside it, and each cell would say its video is missing: once the first few videos tried (or all,
  // with fewer) were not found, and no file was (a video or a poster; a folder copied without its posters still
  // plays), the page says so at its top, and the cells say where they looked.
  const FILES = ITEMS.reduce((n, it) => n + it.jobs.filter((j) => j && j.src).length, 0);
  let filesFound = 0;
  let filesLost = 0;
  function fileFound() { filesFound++; }
  function fileLost() {
    filesLost++;
    if (filesFound || filesLost < Math.min(3, FILES) || document.querySelector(".away-note")) return;
    document.body.classList.add("away");
    for (const t of $grid.querySelectorAll(".card .thumb.broken")) markBroken(t);
    document.querySelector("header.top h1").after(h("p", { class: "away-note", role: "status",
      text: "None of the videos this page shows was found beside it: it seems to have been opened apart from its " +
        "output folder (sent on its own, or opened from inside a zip). The videos are in that folder: keep " +
        "report.html in it, and share the whole folder (zipped), not the page alone." }));
  }
  // A video whose file is gone (deleted, moved away): the cell says so, and so does its card's name.
  function markBroken(thumb) {
    thumb.classList.add("broken");
    const c = thumb.closest(".card");
    if (c) c.setAttribute("aria-label", cardLabel(ITEMS[Number(c.dataset.i)], c));
  }
  function posterOf(thumb) {
    if (!thumb.dataset.poster || thumb.firstElementChild) return;
    thumb.append(posterImg(thumb.dataset.poster, thumb.dataset.label));
  }
  // a poster's <img>: loaded when near the view (the browser's lazy loading, and before it prints)
  function posterImg(src, label) {
    return h("img", { loading: "lazy", src, decoding: "async", alt: "first frame of " + label, onload: fileFound,
      onerror: (e) => { const t = e.target.parentElement; if (t && t.classList.contains("thumb")) noPoster(t); e.target.remove(); } });
  }
  // A printout shows every card's posters, and a print snapshot waits for no image added as it starts
  // (`beforeprint`), only for those of the page: a card's box holds its posters from the start, lazy and not
  // shown, which the browser loads before it prints (and on screen never), and the card filled takes them in.
  // Each costs the page's first drawing a little (about 0.2 ms): a grid of more than PRINT_POSTERS videos has
  // none, its cards' posters loaded as printing starts (a print preview shows them as they arrive; a print
  // made at once, `chromium --print-to-pdf`, has few or none).
  const PRINT_POSTERS = 500;
  const thumbLabel = (it, r) => keyText(it) + (NRUNS > 1 ? ", run " + "AB"[r] : "");
  function shellPosters(c, it) {
    if (FILES > PRINT_POSTERS) return;
    it.jobs.forEach((j, r) => { if (j && j.src && j.poster) c.append(posterImg(j.poster, thumbLabel(it, r))); });
  }
  // a cell whose poster did not load: its players are made without one
  function noPoster(thumb) {
    delete thumb.dataset.poster;
    const v = thumb.querySelector("video");
    if (v) v.removeAttribute("poster");
  }
  // An observer's callback may bring several entries for one element, in the order they were seen, when the page
  // was laid out more than once before it ran (a grid far from the view drawn the frame after it was first laid
  // out, not drawn): only the last says where the element is now. (A player made for a card seen in view, then
  // given back on an earlier entry that saw it far away, would not come back until the card left the view.)
  function latest(entries) {
    const last = new Map();
    for (const e of entries) last.set(e.target, e);
    return last.values();
  }
  let posterObs = null;
  let srcObs = null;
  let dropObs = null;
  let fillObs = null;  // the cards not filled yet, filled as they come near the view
  let farObs = null;   // the cards filled, emptied once far from it
  let printing = false;  // a printout holds every card whole
  function observers() {
    for (const o of [posterObs, srcObs, dropObs, fillObs, farObs]) if (o) o.disconnect();
    for (const t of Array.from(live.keys())) release(t);
    near.clear();
    // the margins are the root's: the grid's own box where it scrolls (a margin of the window would not reach
    // past the box's edges, which clip the cells)
    const root = gridScrolls() ? $grid : null;
    posterObs = new IntersectionObserver((entries) => {
      for (const e of latest(entries)) if (e.isIntersecting) { posterOf(e.target); posterObs.unobserve(e.target); }
    }, { root, rootMargin: "500px 300px" });
    srcObs = new IntersectionObserver((entries) => {
      for (const e of latest(entries)) {
        if (!e.isIntersecting) { near.delete(e.target); continue; }
        near.add(e.target);
        const v = videoOf(e.target);
        if (v && session && session.thumbs.has(e.target) && !playSet.has(v)) join(v, session);
      }
    }, { root, rootMargin: "100px 50px" });
    // a wider margin to give a player back, so that a small scroll to and fro keeps it; a cell that plays with
    // the others (▶ of a grid, row or column) gives it back too, and joins them again when it comes back
    dropObs = new IntersectionObserver((entries) => {
      for (const e of latest(entries)) {
        if (e.isIntersecting || !live.has(e.target)) continue;
        if (!busy(live.get(e.target)) || (session && session.thumbs.has(e.target))) release(e.target);
      }
    }, { root, rootMargin: "600px 400px" });
    fillObs = new IntersectionObserver((entries) => {
      for (const e of latest(entries)) if (e.isIntersecting) fill(e.target);
      keepFocusedInView();
    }, { root, rootMargin: "1200px 800px" });
    farObs = new IntersectionObserver((entries) => {
      for (const e of latest(entries)) if (!e.isIntersecting) empty(e.target);
    }, { root, rootMargin: "3000px 2000px" });
  }
  function watch(thumb) {
    posterObs.observe(thumb);
    srcObs.observe(thumb);
    dropObs.observe(thumb);
  }
  const thumbsIn = (root, sel) => Array.from(root.querySelectorAll((sel || "") + " .thumb[data-src]"));
  // The videos to play of `thumbs`: those in view first, then the nearest, up to MAX_VIDEOS.
  function pick(thumbs) {
    const v = viewBox();
    const dist = (t) => {
      // the card's box: a thumb's own, in a card not drawn (content-visibility), would cost that card a layout;
      // the group's, in a group not drawn
      const g = t.closest(".group");
      const r = (g && undrawn.has(g) ? g : t.closest(".card") || t).getBoundingClientRect();
      const dy = r.bottom < v.top ? v.top - r.bottom : r.top > v.bottom ? r.top - v.bottom : 0;
      const dx = r.right < v.left ? v.left - r.right : r.left > v.right ? r.left - v.right : 0;
      return dy + dx;
    };
    let chosen = thumbs;
    if (thumbs.length > MAX_VIDEOS) {
      const d = new Map(thumbs.map((t) => [t, dist(t)]));
      chosen = thumbs.slice().sort((a, b) => d.get(a) - d.get(b)).slice(0, MAX_VIDEOS);
    }
    // the chosen ones get players: the others' go first, the least recently used first
    const keep = new Set(chosen);
    let excess = live.size + chosen.filter((t) => !live.has(t)).length - MAX_VIDEOS;
    for (const t of Array.from(live.keys())) {
      if (excess <= 0) break;
      if (!keep.has(t)) { release(t); excess--; }
    }
    const videos = chosen.map(videoOf).filter((v) => v);
    return { videos, of: thumbs.length };
  }
  // The ▶ of `root` (the grid, a grid of a group) or of its cells matching `sel` (a row's, a column's): the
  // videos of its cards not filled yet are counted too, and join the others as they are filled.
  function playIn(root, sel) {
    const within = (c) => root.contains(c) && (!sel || !!c.closest(sel));
    let later = 0;
    for (const c of root.querySelectorAll((sel || "") + " .card.shell")) {
      for (const j of ITEMS[Number(c.dataset.i)].jobs) if (j && j.src) later++;
    }
    playThumbs(thumbsIn(root, sel), within, later);
  }
  function playThumbs(thumbs, within, later) {
    if (!thumbs.length && !later) {  // a row or column of failed or pending jobs, say
      stopAll();
      note("nothing to play: none of these jobs has a video");
      return;
    }
    const p = pick(thumbs);
    const token = syncPlay(p.videos);
    // the cells of the same ▶ scrolled into view later join in, at the time the others are at
    session = { token, thumbs: new Set(thumbs), start: 0, within };
    const of = p.of + (later || 0);
    note(p.videos.length < of ? "playing " + p.videos.length + " of " + of + " videos (the ones in view first; " +
         "the others join as they come into view)" : "");
  }
  function attachAll() { return thumbsIn($grid).map(videoOf).filter((v) => v).length; }

  // ---- synchronised playback ----------------------------------------------------------------------
  // Until `v` has loaded to `level`, failed, or was given back (its cell scrolled away: it joins in again when
  // back in view), or for `ms` at most.
  function ready(v, level, ms) {
    return new Promise((resolve) => {
      const ok = () => (v.readyState >= level && !v.seeking) || !!v.error || !!v.dataset.released;
      if (ok()) { resolve(); return; }
      const evts = ["loadedmetadata", "loadeddata", "canplay", "canplaythrough", "seeked", "error", "released"];
      const finish = () => { clearTimeout(timer); for (const e of evts) v.removeEventListener(e, check); resolve(); };
      const check = () => { if (ok()) finish(); };
      const timer = setTimeout(finish, ms);
      for (const e of evts) v.addEventListener(e, check);
    });
  }
  let playToken = 0;
  // Start `videos` together from their first frame; returns the token that a later ▶ or ■ makes stale.
  function syncPlay(videos) {
    const token = ++playToken;
    session = null;
    const chosen = new Set(videos);
    playSet = chosen;
    for (const v of document.querySelectorAll("video")) if (!chosen.has(v)) v.pause();
    for (const v of videos) { v.loop = ui.loop; v.muted = true; v.pause(); }
    (async () => {
      await Promise.all(videos.map((v) => ready(v, 1, 8000)));
      if (token !== playToken) return;
      for (const v of videos) if (!v.dataset.released) { try { v.currentTime = 0; } catch (e) { /* not seekable yet */ } }
      await Promise.all(videos.map((v) => ready(v, 3, 5000)));
      if (token !== playToken) return;
      if (session && session.token === token) session.start = performance.now();
      for (const v of videos) if (!v.dataset.released) { const p = v.play(); if (p) p.catch(() => {}); }
    })();
    return token;
  }
  // A video of a playing ▶'s cell that came into view: to where the others are (looping, or at its end when
  // they have played past it), then playing with them. A seek takes time (the first one loads the data): the
  // video is sought to where the others will be a little later, once it has loaded enough to seek (its
  // metadata), and set playing when their clock reaches that point; a seek that took longer than that lead is
  // made again with a longer one. One that started playing off the clock all the same (a busy machine) is put
  // back on it once.
  async function join(v, s) {
    playSet.add(v);
    v.loop = ui.loop;
    v.muted = true;
    await ready(v, 1, 8000);
    while (!s.start && session === s) await new Promise((r) => setTimeout(r, 100));  // the others not started yet
    const gone = () => session !== s || s.token !== playToken || !v.isConnected || !!v.dataset.released;
    if (gone()) return;
    const dur = v.duration;
    const at = () => (performance.now() - s.start) / 1000;
    if (!ui.loop && isFinite(dur) && at() >= dur) {  // the others have played to their end: so does this one
      try { v.currentTime = dur; } catch (e) { /* not seekable */ }
      return;
    }
    const seekable = isFinite(dur) && dur > 0;
    for (let round = 0; round < 2; round++) {
      if (seekable && !(await seekAhead(v, dur, at, gone))) return;
      const p = v.play();
      if (p) p.catch(() => {});
      if (!seekable || round) return;
      await new Promise((r) => setTimeout(r, 300));
      if (gone() || v.paused || (!ui.loop && at() >= dur)) return;
      const off = Math.abs(v.currentTime - at() % dur);
      if (Math.min(off, dur - off) < 0.12) return;
      v.pause();
    }
  }
  // `v` sought to where the clock `at` will be once the seek is done, and waiting until it is there; false when
  // the ▶ it plays with is no more.
  async function seekAhead(v, dur, at, gone) {
    let lead = 0.25;
    for (let i = 0; i < 4; i++) {
      const to = at() + lead;
      if (!ui.loop && to >= dur) return true;  // near the end: it plays from where it is
      const t0 = performance.now();
      try { v.currentTime = to % dur; } catch (e) { return true; /* not seekable yet */ }
      await ready(v, 3, 5000);
      if (gone()) return false;
      const early = to - at();
      if (early >= 0) {
        if (early > 0.004) await new Promise((r) => setTimeout(r, early * 1000));
        return !gone();
      }
      lead = Math.min(4, 1.5 * (performance.now() - t0) / 1000 + 0.05);  // the seek took longer: lead by more
    }
    return true;
  }
  function stopAll() {
    playToken++;
    session = null;
    playSet = new Set();
    note("");
    for (const v of document.querySelectorAll("video")) v.pause();
  }
  const playing = () => Array.from(document.querySelectorAll("video")).some((v) => !v.paused && !v.ended);

  // ---- toolbar ---------------------------------------------------------------------------------------
  let $count = null;
  let $note = null;
  let $live = null;
  function note(text) { if ($note) $note.textContent = text; }
  // `more`: said to a screen reader after the visible label, which the name still starts with
  function field(label, control, more) { return h("label", null, label, more ? h("span", { class: "sr-only", text: more }) : null, control); }
  function axisSelect(id, value, onchange) {
    const s = h("select", { id, onchange },
      h("option", { value: "", text: "(none)" }),
      ...MULTI.map((a) => h("option", { value: a.id, text: a.label + " (" + a.values.length + ")" })));
    s.value = value || "";
    return s;
  }
  function setAxis(side, value) {
    const other = side === "x" ? "y" : "x";
    if (value !== null && value === ui[other]) ui[other] = ui[side];
    ui[side] = value;
    update(true);
  }
  function buildToolbar() {
    const kids = [];
    kids.push(field("X", axisSelect("ctl-x", ui.x, (e) => setAxis("x", e.target.value || null)), " (columns)"));
    kids.push(field("Y", axisSelect("ctl-y", ui.y, (e) => setAxis("y", e.target.value || null)), " (rows)"));
    // named for what they do, as the grid's ▶ are: a screen reader would read the glyphs
    kids.push(h("button", { id: "ctl-swap", type: "button", title: "swap X and Y", "aria-label": "swap X and Y", text: "⇄ swap",
      onclick: () => { [ui.x, ui.y] = [ui.y, ui.x]; update(true); } }));
    const others = MULTI.filter((a) => a.id !== ui.x && a.id !== ui.y);
    if (others.length) kids.push(h("span", { class: "sep" }));
    for (const a of others) {
      const s = h("select", { class: "ctl-axis", id: "ctl-axis-" + a.id, "data-axis": a.id, onchange: (e) => { ui.modes[a.id] = e.target.value; update(false); } },
        h("option", { value: "group", text: "grid of grids" }),
        h("option", { value: "stack", text: "all in one cell" }),
        ...a.values.map((v, i) => h("option", { value: "=" + i, text: "only " + valueText(v) })));
      s.value = modeOf(a.id);
      if (s.value !== modeOf(a.id)) { ui.modes[a.id] = "group"; s.value = "group"; }
      kids.push(field(a.label, s));
    }
    kids.push(h("span", { class: "sep" }));
    // A status chosen that no job has now (the live page's last reload brought the finished page: none is
    // running) stays chosen, said "none now" here and in the count, rather than the page showing every job in
    // its place unasked; "all" is one pick away.
    const present = new Set();
    for (const it of ITEMS) for (const j of it.jobs) if (j) present.add(groupOf(j.state));
    const st = h("select", { id: "ctl-status", onchange: (e) => { ui.status = e.target.value; update(false); } },
      h("option", { value: "all", text: "all" }),
      ...STATUS_ORDER.filter((g) => present.has(g) || g === ui.status).map((g) => h("option", { value: g,
        text: groupLabel(g) + (present.has(g) ? "" : " (none now)") })));
    st.value = STATUS_ORDER.includes(ui.status) ? ui.status : "all";
    ui.status = st.value;
    kids.push(field("status", st));
    if (NRUNS > 1) {
      kids.push(field("differences only", h("input", { type: "checkbox", id: "ctl-diff", checked: ui.diff,
        onchange: (e) => { ui.diff = e.target.checked; update(false); } })));
    }
    kids.push(field("size", h("input", { type: "range", id: "ctl-size", min: 100, max: 640, step: 20, value: cellSize(),
      "aria-valuetext": cellSize() + " px",
      oninput: (e) => { ui.size = Number(e.target.value); e.target.setAttribute("aria-valuetext", ui.size + " px"); sizeSoon(); },
      onchange: () => sizeNow() })));
    kids.push(h("span", { class: "sep" }));
    kids.push(h("button", { id: "ctl-play", type: "button", "aria-label": "play all", text: "▶ play all",
      disabled: !ANY_VIDEO, title: ANY_VIDEO ? null : NOTHING_TO_PLAY, onclick: () => playIn($grid, "") }));
    kids.push(h("button", { id: "ctl-stop", type: "button", "aria-label": "stop", text: "■ stop", onclick: stopAll }));
    $note = h("span", { class: "note", id: "ctl-note", role: "status" });
    kids.push($note);
    kids.push(field("loop", h("input", { type: "checkbox", id: "ctl-loop", checked: ui.loop,
      onchange: (e) => { ui.loop = e.target.checked; for (const v of document.querySelectorAll("video")) v.loop = ui.loop; writeHash(); } })));
    kids.push(field("prompts", h("input", { type: "checkbox", id: "ctl-prompts", checked: ui.prompts,
      onchange: (e) => { ui.prompts = e.target.checked; applySize(); writeHash(); } })));
    if (reloading) {
      kids.push(field("reload while running", h("input", { type: "checkbox", id: "ctl-reload", checked: ui.reload,
        onchange: (e) => { ui.reload = e.target.checked; writeHash(); sayLive(); } })));
      $live = h("span", { class: "note", id: "ctl-live", role: "status", text: pausedWhy() });
      kids.push($live);
    }
    // a status (polite live region): what a filter leaves is said after each change
    $count = h("span", { class: "count", id: "ctl-count", role: "status", text: $count ? $count.textContent : "" });
    kids.push($count);
    // the control that changed the layout keeps focus (arrowing through X's options goes on)
    const focused = $bar.contains(document.activeElement) ? document.activeElement.id : "";
    $bar.replaceChildren(...kids);
    const again = focused && (document.getElementById(focused) || document.getElementById("ctl-status"));
    if (again) again.focus();
  }
  // Unless the user picked a size, cells share the window's width (few columns get big cells). On a narrow screen
  // (the stylesheet's: row heads of at most 90 px) cells may be as small as the size slider goes, so that a grid
  // of two columns fits a phone's width rather than scrolling sideways. Cells grow past the default size only as
  // far as the rows' videos still share the window's height: a long Y against a short X (600 rows of 2) keeps
  // the default size, and a screen shows more of it, not 3 rows of 420-px cells with a third of the window empty.
  const DEFAULT_CELL = 220;
  let autoSize = DEFAULT_CELL;
  const rowsOfAxis = new Map();  // Y axis -> how many values it has (its rows)
  let columns = 1;
  const NARROW = window.matchMedia("(max-width: 720px)");
  const REDUCED_MOTION = window.matchMedia("(prefers-reduced-motion: reduce)");
  const cellSize = () => (ui.size !== null ? ui.size : autoSize);
  function fitSize() {
    const narrow = NARROW.matches;
    const avail = document.documentElement.clientWidth - 32 - (narrow ? 100 : 190);
    const per = avail / Math.max(1, columns) - 10;
    const yi = axisOf(ui.y);
    if (!rowsOfAxis.has(yi)) rowsOfAxis.set(yi, yi < 0 ? 1 : new Set(ITEMS.map((it) => it.ix[yi])).size);
    const tall = (window.innerHeight / rowsOfAxis.get(yi)) * 16 / 9;  // the width whose 16:9 videos fill a row's share
    autoSize = Math.round(Math.min(420, Math.max(DEFAULT_CELL, tall),
      Math.max(narrow ? 100 : 140, NRUNS > 1 ? per / 2 - 8 : per)));
    const slider = document.getElementById("ctl-size");
    if (slider && ui.size === null) { slider.value = autoSize; slider.setAttribute("aria-valuetext", autoSize + " px"); }
  }
  // Every change of the layout's inputs first, then every measure, then what follows from them: a grid of
  // thousands of cards is laid out once, not once a measure.
  // (`fresh`: a grid just drawn, whose groups have no size of their own yet)
  function applySize(fresh) {
    setVar("--cell", cellSize() + "px");
    document.body.classList.toggle("hide-prompts", !ui.prompts);
    const samples = sampleCards();
    fitBar();
    measureCards(samples);
    // a grid just drawn is measured now (its groups not drawn yet, that costs little); a change of sizes once
    // the frame has laid the groups in view out with them, not in a layout of its own
    cancelAnimationFrame(resizeFrame);
    clearTimeout(resizeTimer);
    if (fresh === true) sizeGroups(true);
    else resizeFrame = requestAnimationFrame(() => { resizeTimer = setTimeout(() => sizeGroups(false)); });
  }
  let resizeFrame = 0;
  let resizeTimer = 0;
  // The groups far from the view are not drawn (the stylesheet's content-visibility): each takes the size of the
  // first group of its shape, drawn for the measure, until it is drawn itself; the size a group had when last
  // drawn, which the browser keeps for it, is forgotten for a frame, as the layout's sizes have changed.
  const undrawn = new Set();  // the groups the browser does not draw now
  const shapeSizes = new Map();  // each shape's size as the groups not drawn take it
  // A group drawn, its cards filled, is the measure of its shape: the groups of that shape below the view, never
  // drawn, take its size (one above the view keeps its size, so that what is in view does not move).
  const drawnNow = (g) => !!g.lastElementChild && g.lastElementChild.checkVisibility({ contentVisibilityAuto: true });
  const groupSizes = new ResizeObserver((entries) => {
    const measured = new Map();
    for (const e of entries) {
      const g = e.target;
      if (!g.isConnected || measured.has(g.dataset.shape) || !drawnNow(g)) continue;
      const box = e.contentBoxSize[0];
      const size = [box.inlineSize.toFixed(1) + "px", box.blockSize.toFixed(1) + "px"];
      const was = shapeSizes.get(g.dataset.shape);
      if (was && was[0] === size[0] && was[1] === size[1]) continue;
      shapeSizes.set(g.dataset.shape, size);
      measured.set(g.dataset.shape, size);
    }
    if (!measured.size) return;
    const bottom = viewBox().bottom;
    for (const g of $grid.querySelectorAll(":scope > .group")) {
      const size = measured.get(g.dataset.shape);
      if (!size || g.getBoundingClientRect().top < bottom || drawnNow(g)) continue;
      if (g.style.getPropertyValue("--gw") !== size[0]) g.style.setProperty("--gw", size[0]);
      if (g.style.getPropertyValue("--gh") !== size[1]) g.style.setProperty("--gh", size[1]);
    }
  });
  let forgetting = 0;
  function sizeGroups(fresh) {
    const groups = $grid.querySelectorAll(":scope > .group:not(.alone)");
    if (!groups.length) return;
    const shapes = new Map();
    for (const g of groups) if (!shapes.has(g.dataset.shape)) shapes.set(g.dataset.shape, g);
    for (const g of shapes.values()) g.style.contentVisibility = "visible";
    const cs = getComputedStyle(groups[0]);
    const padW = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
    const padH = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    const sizes = new Map();
    for (const [k, g] of shapes) {
      const r = g.getBoundingClientRect();
      sizes.set(k, [Math.max(0, r.width - padW).toFixed(1) + "px", Math.max(0, r.height - padH).toFixed(1) + "px"]);
    }
    for (const g of shapes.values()) g.style.contentVisibility = "";
    shapeSizes.clear();
    for (const [k, size] of sizes) shapeSizes.set(k, size);
    for (const g of groups) {
      const [w, ht] = sizes.get(g.dataset.shape);
      if (g.style.getPropertyValue("--gw") !== w) g.style.setProperty("--gw", w);
      if (g.style.getPropertyValue("--gh") !== ht) g.style.setProperty("--gh", ht);
    }
    for (const g of groups) groupSizes.observe(g);
    if (fresh) return;
    for (const g of undrawn) if (!g.contains(document.activeElement)) g.classList.add("forget");
    cancelAnimationFrame(forgetting);
    forgetting = requestAnimationFrame(() => {
      forgetting = requestAnimationFrame(() => {
        forgetting = 0;
        for (const g of $grid.querySelectorAll(":scope > .group.forget")) g.classList.remove("forget");
      });
    });
  }
  // A drag of the size slider fires `input` many times a second, and a grid of thousands of cards takes a
  // while to lay out: the cells take the size the slider is at once a frame (`--cell` only, the one layout the
  // frame makes anyway; the inputs that came meanwhile are one), and the cards are measured again (`applySize`)
  // once, when the slider is let go (`change`).
  let sizeFrame = 0;
  function sizeSoon() {
    if (sizeFrame) return;
    sizeFrame = requestAnimationFrame(() => { sizeFrame = 0; setVar("--cell", cellSize() + "px"); });
  }
  function sizeNow() {
    if (sizeFrame) cancelAnimationFrame(sizeFrame);
    sizeFrame = 0;
    applySize();
    writeHash();
  }
  // A CSS variable of the page set only when it changes: the same value set again would lay out the page again.
  function setVar(name, value) {
    const root = document.documentElement;
    if (root.style.getPropertyValue(name) !== value) root.style.setProperty(name, value);
  }
  // The page is as wide as its widest grid; the header and the toolbar keep to the window's width (its
  // scroll bar left out), so that they stay in view, at the left, when a wide grid is scrolled sideways.
  function fitBar() {
    setVar("--page-w", document.documentElement.clientWidth + "px");
    setVar("--bar-h", $bar.offsetHeight + "px");
  }
  new ResizeObserver(fitBar).observe(document.documentElement);  // a scroll bar that comes or goes
  // Cards not yet drawn (content-visibility) are laid out at the size of a drawn one: the thumbs' shape
  // (the first video's), and what a few drawn cards hold under their thumb (the median of up to 9).
  const firstJob = (() => { for (const it of ITEMS) for (const j of it.jobs) if (j && j.w && j.h) return j; return null; })();
  if (firstJob) document.documentElement.style.setProperty("--thumb-ar", String(firstJob.h / firstJob.w));
  // The cards to measure, drawn for the measure (the layout that follows draws them all at once).
  function sampleCards() {
    const cards = $grid.querySelectorAll(".card:not(.shell)");
    const samples = [];
    const stride = Math.max(1, Math.floor(cards.length / 9));
    for (let k = 0; k < cards.length && samples.length < 9; k += stride) samples.push(cards[k]);
    for (const c of samples) c.style.contentVisibility = "visible";
    return samples;
  }
  function measureCards(samples) {
    if (!samples.length) return;
    const extra = samples.map((c) => {
      const t = c.querySelector(".thumb");
      return c.getBoundingClientRect().height - (t ? t.getBoundingClientRect().height : 0);
    });
    for (const c of samples) c.style.contentVisibility = "";
    extra.sort((a, b) => a - b);
    setVar("--card-extra", extra[extra.length >> 1].toFixed(1) + "px");
  }

  // ---- the grid -------------------------------------------------------------------------------------
  // A page whose jobs have no video (all failed, none done yet): its ▶ are there, disabled, saying why.
  const ANY_VIDEO = ITEMS.some((it) => it.jobs.some((j) => j && j.src));
  const NOTHING_TO_PLAY = "nothing to play: no job has a video";
  // Each ▶ says which grid, row or column it plays (a screen reader reads its name, not the ▶).
  // (`inGrid`: the ▶ of a row or column, reached with the grid's arrow keys, not the Tab key: `roving`)
  function playButton(title, cls, which, inGrid) {
    return h("button", { type: "button", class: "small " + cls, title: ANY_VIDEO ? title : title + " (" + NOTHING_TO_PLAY + ")",
      "aria-label": title, text: "▶", disabled: !ANY_VIDEO, tabindex: inGrid ? -1 : null,
      onclick: (e) => { e.stopPropagation(); playIn(...which()); } });
  }
  // The cards filled as the grid is drawn; the others are filled as they come near the view (`fill`).
  const EAGER = 300;
  // a job's place in the grid's order as laid out now, shown or not (its card the status filter hides): its grid
  // of grids, row, column, then the jobs' own order within a cell
  let orderOf = (n) => [n];
  function renderGrid() {
    writeHash();
    const xi = axisOf(ui.x);
    const yi = axisOf(ui.y);
    const others = MULTI.filter((a) => a.id !== ui.x && a.id !== ui.y).map((a) => AX.get(a.id));
    const groupAx = others.filter((i) => modeOf(AXES[i].id) === "group")
      .sort((a, b) => (AXES[b].kind === "sweep") - (AXES[a].kind === "sweep") || a - b);
    orderOf = (n) => groupAx.map((i) => ITEMS[n].ix[i]).concat([yi < 0 ? 0 : ITEMS[n].ix[yi], xi < 0 ? 0 : ITEMS[n].ix[xi], n]);
    const filters = [];
    for (const i of others) {
      const m = modeOf(AXES[i].id);
      if (m[0] === "=") filters.push([i, Number(m.slice(1))]);
    }
    const groups = new Map();
    const perCell = new Map();
    // the cells that hold a job, shown or not: a cell the filters emptied is not one of a combination never made
    const held = new Set();
    const cellOf = (it, gk) => gk + "|" + (yi < 0 ? 0 : it.ix[yi]) + "," + (xi < 0 ? 0 : it.ix[xi]);
    let stacked = 1;
    let shown = 0;
    ITEMS.forEach((it, n) => {
      held.add(cellOf(it, groupAx.map((i) => it.ix[i]).join(",")));
      for (const [i, v] of filters) if (it.ix[i] !== v) return;
      if (ui.status !== "all" && !it.jobs.some((j) => j && groupOf(j.state) === ui.status)) return;
      if (ui.diff && !(differs(it) || it.only)) return;
      const gix = groupAx.map((i) => it.ix[i]);
      const gk = gix.join(",");
      let g = groups.get(gk);
      if (!g) { g = { ix: gix, items: [] }; groups.set(gk, g); }
      g.items.push(n);
      shown++;
      const ck = cellOf(it, gk);
      const k = (perCell.get(ck) || 0) + 1;
      perCell.set(ck, k);
      if (k > stacked) stacked = k;
    });
    // a cell is as wide as the most cards one cell holds (the axes stacked "all in one cell")
    columns = (yi < 0 ? 5 : xi < 0 ? 1 : new Set(ITEMS.map((it) => it.ix[xi])).size) * stacked;
    fitSize();
    observers();
    const frag = document.createDocumentFragment();
    // Grids of one family share their rows and columns, so they line up for comparison; a family is
    // everything, or one sweep when sweeps are grouped (sweeps may vary different keys).
    const sweepAt = groupAx.findIndex((i) => AXES[i].kind === "sweep");
    const family = (g) => (sweepAt < 0 ? "" : String(g.ix[sweepAt]));
    const spans = new Map();
    for (const g of groups.values()) {
      const f = family(g);
      if (!spans.has(f)) spans.set(f, { cols: new Set(), rows: new Set() });
      for (const n of g.items) {
        spans.get(f).cols.add(xi < 0 ? 0 : ITEMS[n].ix[xi]);
        spans.get(f).rows.add(yi < 0 ? 0 : ITEMS[n].ix[yi]);
      }
    }
    for (const g of Array.from(groups.values()).sort((a, b) => cmpArr(a.ix, b.ix))) {
      const span = spans.get(family(g));
      frag.append(buildGroup(g, groupAx, xi, yi, uniqSorted(span.cols), uniqSorted(span.rows), held, family(g)));
    }
    // no job of the status chosen at all (not only none under the other filters)
    const noneNow = ui.status !== "all" && !ITEMS.some((it) => it.jobs.some((j) => j && groupOf(j.state) === ui.status));
    if (!shown) frag.append(h("p", { class: "empty-note", text: noneNow ? "No job is " + groupLabel(ui.status) +
      " now: pick \u201call\u201d in status to see the others." : "No job matches these settings." }));
    undrawn.clear();
    // a grid alone is always in view: drawn as it is, not measured for when it is not
    if (groups.size === 1) frag.firstElementChild.classList.add("alone");
    $grid.replaceChildren(frag);
    // the first cards in the page's order (the first screen, a small grid whole) are filled at once, the others
    // as they come near the view
    const cards = $grid.getElementsByClassName("card");
    for (let k = 0; k < cards.length; k++) if (k < EAGER) fill(cards[k]); else fillObs.observe(cards[k]);
    applySize(true);
    $count.textContent = (noneNow ? groupLabel(ui.status) + ": none now · " : "") + (shown === ITEMS.length
      ? (shown === 1 ? "1 job" : COUNT.format(shown) + " jobs")
      : "showing " + COUNT.format(shown) + " of " + COUNT.format(ITEMS.length) + " jobs");
  }

  function buildGroup(g, groupAx, xi, yi, allCols, rows, held, fam) {
    const sec = h("section", { class: "group" });
    sec.addEventListener("contentvisibilityautostatechange", (e) => {
      if (e.target === sec) { if (e.skipped) undrawn.add(sec); else undrawn.delete(sec); }
    });
    if (groupAx.length) {
      // each value cut as the other heads are (a prompt as an axis would fill the window), whole in the title
      const whole = groupAx.map((a, k) => AXES[a].label + " = " + valueText(AXES[a].values[g.ix[k]])).join(" · ");
      const head = h("span", { dir: "auto", title: whole });
      groupAx.forEach((a, k) => {
        const raw = AXES[a].values[g.ix[k]];
        head.append((k ? " · " : "") + AXES[a].label + " = ",
          raw === null ? h("i", { class: "unset", title: unsetWhy(a), text: UNSET }) : brief(valueText(raw), 120));
      });
      sec.append(h("div", { class: "group-head" }, h("h2", null, head),
        playButton("play the grid " + brief(whole) + " in sync", "play-group", () => [sec, ""])));
    }
    const xOf = (n) => (xi < 0 ? 0 : ITEMS[n].ix[xi]);
    const yOf = (n) => (yi < 0 ? 0 : ITEMS[n].ix[yi]);
    const cells = new Map();
    for (const n of g.items) {
      const k = yOf(n) + "," + xOf(n);
      if (!cells.has(k)) cells.set(k, []);
      cells.get(k).push(n);
    }
    const cols = yi < 0 ? uniqSorted(g.items.map(xOf)) : allCols;
    if (yi < 0) {
      const flow = h("div", { class: "flow" });
      for (const c of cols) {
        const cell = h("div", { class: "cell", "data-row": 0, "data-col": c });
        if (xi >= 0) {
          const raw = AXES[xi].values[c];
          cell.append(h("div", { class: "cell-label" + (raw === null ? " unset" : ""), dir: "auto",
            title: raw === null ? unsetWhy(xi) : valueText(raw), text: AXES[xi].label + " = " + valueText(raw) }));
        }
        const stack = h("div", { class: "stack" });
        for (const n of cells.get("0," + c)) stack.append(card(n));
        cell.append(stack);
        flow.append(cell);
      }
      // a grid's corner says how its keys go; cells that flow have no corner
      sec.append(h("span", { class: "sr-only", text: "the arrow keys move between the cards, Home and End to the ends " +
        "of a line on screen, Tab out of the cards" }), flow);
      sec.classList.add("flows");
      sec.dataset.shape = "flow|" + fam + "|" + cols.map((c) => cells.get("0," + c).length).join(",");
      roving(flow);
      return sec;
    }
    const grid = h("div", { class: "grid", style: "grid-template-columns: max-content repeat(" + cols.length + ", max-content)" });
    grid.append(h("div", { class: "corner" },
      h("span", { class: "axis-name", "aria-hidden": "true", text: AXES[yi].label + " ↓  " + (xi < 0 ? "" : AXES[xi].label + " →") }),
      h("span", { class: "sr-only", text: "rows: " + AXES[yi].label + (xi < 0 ? "" : ", columns: " + AXES[xi].label) +
        "; the arrow keys move between the cards, Home and End to a row's ends, Tab out of the grid" })));
    for (const c of cols) {
      grid.append(h("div", { class: "colh", "data-col": c },
        xi < 0 ? h("span", { class: "axis-val" }) : valueSpan(xi, c, "axis-val"),
        playButton(xi < 0 ? "play this column in sync" : "play column " + axisText(xi, c) + " in sync", "play-col",
          () => [grid, '.cell[data-col="' + c + '"]'], true)));
    }
    for (const r of rows) {
      // on paper, with no column heads nor corner, the row's value says its axis: "seed = 1" (report.css)
      const value = valueSpan(yi, r, "axis-val");
      value.dataset.label = AXES[yi].label;
      grid.append(h("div", { class: "rowh", "data-row": r },
        value,
        playButton("play row " + axisText(yi, r) + " in sync", "play-row",
          () => [grid, '.cell[data-row="' + r + '"]'], true)));
      for (const c of cols) {
        const ns = cells.get(r + "," + c);
        const hidden = !ns && held.has(g.ix.join(",") + "|" + r + "," + c);
        const cell = h("div", { class: ns ? "cell" : hidden ? "cell empty filtered" : "cell empty",
          "data-row": r, "data-col": c, title: hidden ? "its jobs are hidden by the filters" : null });
        if (ns) for (const n of ns) cell.append(card(n));
        else cell.append(hidden ? "filtered" : "no job");
        grid.append(cell);
      }
    }
    sec.append(grid);
    // the groups of one family whose rows hold cards alike and whose cells hold as many cards are as large
    sec.dataset.shape = "grid|" + fam + "|" + rows.map((r) => (cols.some((c) => cells.has(r + "," + c)) ? 1 : 0)).join("") +
      "|" + cols.map((c) => Math.max(0, ...rows.map((r) => (cells.get(r + "," + c) || []).length))).join(",");
    roving(grid);
    return sec;
  }

  // ---- the keyboard in a grid ----------------------------------------------------------------------------
  // A grid is one stop of the Tab key, however many cards it holds: the card (or ▶) last focused in it, at first
  // its first card. Inside it the arrow keys move by the cells' rows and columns, the ▶ of a row left of its first
  // card and that of a column above its first row; Home and End go to the ends of a row's cards, Ctrl+Home and
  // Ctrl+End to the grid's first and last card; Enter or Space opens a card's details (or plays a ▶). Cells that
  // flow (no Y axis) wrap to the window: there the lines are those on screen, Home and End go to a line's ends.
  // A key looks only at the cards near the focused one (its row and column, or its line and the next), so that a
  // press costs the same in a grid of 10,000 cards as in one of 12.
  const ROVING = ".card, .play-row:not(:disabled), .play-col:not(:disabled)";  // a disabled ▶ takes no focus
  const stops = new WeakMap();  // each grid's one Tab stop
  function roving(box) {
    const first = box.querySelector(".card");
    if (first) { first.tabIndex = 0; stops.set(box, first); }
  }
  $grid.addEventListener("focusin", (e) => {
    const el = e.target;
    const box = el.matches && el.matches(ROVING) ? el.closest(".grid, .flow") : null;
    if (!box || el.tabIndex === 0) return;
    const was = stops.get(box);
    if (was) was.tabIndex = -1;
    el.tabIndex = 0;
    stops.set(box, el);
  });
  const cardsOf = (cell) => (cell.classList.contains("cell") ? cell.querySelectorAll(".card") : []);
  function lastCard(box) {
    for (let e = box.lastElementChild; e; e = e.previousElementSibling) {
      const cs = cardsOf(e);
      if (cs.length) return cs[cs.length - 1];
    }
    return null;
  }
  // A grid's children come row by row: the corner and the column heads, then each row's head and its cells. A
  // row is known by its head (the corner for the column heads' ▶).
  function headOf(el) {
    if (el.classList.contains("play-col")) return el.closest(".grid").firstElementChild;
    if (el.classList.contains("play-row")) return el.closest(".rowh");
    let e = el.closest(".cell");
    while (e && !e.classList.contains("rowh")) e = e.previousElementSibling;
    return e;
  }
  const isHead = (e) => e.classList.contains("rowh") || e.classList.contains("corner");
  function headNext(head, down) {
    let e = head;
    do e = down ? e.nextElementSibling : e.previousElementSibling; while (e && !isHead(e));
    return e;
  }
  // The row's ▶ and cards (or the column heads' ▶), in the page's order: left to right.
  function rowOf(head) {
    const out = [];
    const corner = head.classList.contains("corner");
    if (!corner) out.push(...head.querySelectorAll(ROVING));
    for (let e = head.nextElementSibling; e && !isHead(e); e = e.nextElementSibling) {
      if (corner) out.push(...e.querySelectorAll(".play-col:not(:disabled)"));
      else out.push(...cardsOf(e));
    }
    return out;
  }
  // In the row of `head`, what is at column `c` (-1: the row's ▶), the `k`th card of a cell of several or its last.
  function atColumn(head, c, k) {
    if (c < 0) return head.classList.contains("corner") ? null : head.querySelector(ROVING);
    for (let e = head.nextElementSibling; e && !isHead(e); e = e.nextElementSibling) {
      if (Number(e.dataset.col) !== c) continue;
      if (head.classList.contains("corner")) return e.querySelector(".play-col:not(:disabled)");
      const cs = cardsOf(e);
      return cs.length ? cs[Math.min(k, cs.length - 1)] : null;  // an empty cell is passed over
    }
    return null;
  }
  // The card before or after `el` (d = -1 or 1) in the page's order.
  function cardBeside(el, d) {
    const sib = d > 0 ? el.nextElementSibling : el.previousElementSibling;
    if (sib && sib.classList.contains("card")) return sib;
    for (let cell = el.closest(".cell"); (cell = d > 0 ? cell.nextElementSibling : cell.previousElementSibling);) {
      const cs = cardsOf(cell);
      if (cs.length) return cs[d > 0 ? 0 : cs.length - 1];
    }
    return null;
  }
  // Where a key takes the focus from `el` in `box`: an element, null (nowhere: it stays), undefined (not a key of
  // the grid's).
  function moveFrom(box, el, key, ctrl) {
    if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"].includes(key)) return undefined;
    if (ctrl) return key === "Home" ? box.querySelector(".card") : key === "End" ? lastCard(box) : undefined;
    if (box.classList.contains("flow")) return inFlow(el, key);
    const head = headOf(el);
    if (!head) return undefined;
    if (key === "ArrowUp" || key === "ArrowDown") {
      const down = key === "ArrowDown";
      const cell = el.classList.contains("card") ? el.closest(".cell") : null;
      const c = cell ? Number(cell.dataset.col) : el.classList.contains("play-col") ? Number(el.closest(".colh").dataset.col) : -1;
      const k = cell ? Array.prototype.indexOf.call(cardsOf(cell), el) : 0;
      for (let row = headNext(head, down); row; row = headNext(row, down)) {
        const there = atColumn(row, c, k);
        if (there) return there;
      }
      return null;
    }
    const line = rowOf(head);  // a row's ▶, then its cards left to right (the column heads: their ▶)
    if (key === "Home" || key === "End") {
      const mine = head.classList.contains("corner") ? line : line.filter((o) => o.classList.contains("card"));
      return mine.length ? mine[key === "Home" ? 0 : mine.length - 1] : null;
    }
    const at = line.indexOf(el);
    if (key === "ArrowLeft") return at > 0 ? line[at - 1] : null;
    return at >= 0 && at < line.length - 1 ? line[at + 1] : null;
  }
  // In a flow: the card before or after, the ends of the line of cards on screen, or the nearest card in the line
  // above or below. A card is on the line of another when the two overlap from top to bottom.
  function inFlow(el, key) {
    if (!el.classList.contains("card")) return undefined;
    if (key === "ArrowLeft" || key === "ArrowRight") return cardBeside(el, key === "ArrowLeft" ? -1 : 1);
    const me = el.getBoundingClientRect();
    const along = (a, b) => a.top < b.bottom - 1 && a.bottom > b.top + 1;
    if (key === "Home" || key === "End") {
      const d = key === "Home" ? -1 : 1;
      let end = el;
      for (let o = cardBeside(el, d); o && along(o.getBoundingClientRect(), me); o = cardBeside(o, d)) end = o;
      return end;
    }
    const down = key === "ArrowDown";
    const d = down ? 1 : -1;
    const mid = (me.left + me.right) / 2;
    let o = cardBeside(el, d);
    let r = null;
    // past the cards of its own line
    for (; o; o = cardBeside(o, d)) {
      r = o.getBoundingClientRect();
      if (down ? r.top >= me.bottom - 1 : r.bottom <= me.top + 1) break;
    }
    if (!o) return null;
    const ref = r;
    let best = null;
    let score = Infinity;
    for (; o; o = cardBeside(o, d)) {
      r = o.getBoundingClientRect();
      if (!along(r, ref)) break;
      const s = Math.abs((r.left + r.right) / 2 - mid);
      if (s < score) { score = s; best = o; }
    }
    return best;
  }
  $grid.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.metaKey || e.shiftKey) return;
    const el = e.target;
    const box = el.matches && el.matches(ROVING) ? el.closest(".grid, .flow") : null;
    if (!box) return;
    const to = moveFrom(box, el, e.key, e.ctrlKey);
    if (!to) return;  // at the grid's edge the page scrolls as it would
    e.preventDefault();
    if (to !== el) {
      to.focus();
      keptInView = to;
    }
  });
  // The card the keys moved to stays in view while the cards around it are filled and change the page's height
  // (a jump to the last of 10,000), until the reader scrolls or clicks on their own.
  let keptInView = null;
  function keepFocusedInView() {
    const c = keptInView;
    if (!c) return;
    if (document.activeElement !== c || !c.isConnected) { keptInView = null; return; }
    const r = c.getBoundingClientRect();
    if (r.top < 0 || r.bottom > innerHeight || r.left < 0 || r.right > innerWidth) {
      c.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }
  for (const ev of ["wheel", "touchstart", "pointerdown"]) {
    window.addEventListener(ev, () => { keptInView = null; }, { passive: true, capture: true });
  }

  // What a job's counted cost (`cost`) is, beside the provider's figure as reported (`rep`): that figure, the
  // estimate when the figure was doubted (`doubt`: outside the plausible range), or a figure with none reported.
  function costWords(j) {
    const c = usd(j.cost);
    if (j.doubt) return c + " counted (the estimate: " + usd(j.rep) + " reported, doubted)";
    if (j.rep !== null && j.rep !== undefined) return c + " reported";
    return c + " counted (no reported figure)";
  }
  // A job another run paid for (cached, or sent by an earlier run) shows its cost and that run: this run paid
  // nothing for it.
  // A run as the page names it: "run 10", or "run 10 of grid" for a run of another manifest sharing the state.
  const OTHER_RUNS = DATA.otherRuns || {};
  const runName = (id) => "run " + id + (Object.prototype.hasOwnProperty.call(OTHER_RUNS, id) ? " of " + OTHER_RUNS[id] : "");
  // What a job cost, as its card (`text`, `title`), its name (`say`) and the details view (`words`) all say it: the
  // figure counted where there is one; nothing for a job whose create was refused (rejected); "not reported" for
  // another job that ended without a figure (failed, cancelled, expired, which the header counts at nothing); the
  // estimate, what may be charged, only for a job not sent yet, in flight or of unknown outcome.
  const ENDED = new Set(["done", "failed", "rejected", "expired", "cancelled"]);
  // What a job's billed attempts other than its current one cost (`xa`, `xn` of them), each (`xk`) by how it ended,
  // the run its charge counts for, and whether it was an attempt before the current take, sent again since, or a
  // re-render after it that left the job as it was: spent, though its cost (its current attempt's) does not count
  // them. "+$0.175 for a cancelled re-render, run 2", "+$0.35 for an expired attempt, run 1".
  const an = (word) => (/^[aeiou]/i.test(word) ? "an " : "a ") + word;
  function earlierKinds(j) {
    const kinds = new Map();
    for (const [state, run, re] of (j.xk || [])) {
      const what = (state || "earlier") + (re ? " re-render" : " attempt");
      const k = kinds.get(what) || { n: 0, runs: [] };
      k.n += 1;
      if (run !== null && run !== undefined && !k.runs.includes(run)) k.runs.push(run);
      kinds.set(what, k);
    }
    if (!kinds.size) kinds.set(j.xf ? "failed attempt" : "earlier attempt", { n: j.xn, runs: [] });
    return [...kinds.entries()].map(([what, k]) => (k.n === 1 ? an(what) : k.n + " " + what + "s")
      + (k.runs.length ? ", " + k.runs.map(runName).join(", ") : ""));
  }
  function earlierWords(j) {
    return "+" + usd(j.xa) + " for " + earlierKinds(j).join("; ");
  }
  function costOf(j) {
    const c = costOfAttempt(j);
    if (!j.xa) return c;
    const more = earlierWords(j);
    const re = (j.xk || []).filter((k) => k[2]).length;
    const after = re === 0 ? " sent again" : re === j.xk.length ? ", the earlier video kept" : "";
    return { text: c.text + " (" + more + ")", title: c.title + "; " + more + after,
      say: c.say + " (" + more + ")", words: c.words + " (" + more + ")", cls: c.cls };
  }
  function costOfAttempt(j) {
    if (j.cost !== null && j.cost !== undefined) {
      return { text: usd(j.cost), title: costWords(j) + "; estimate " + usd(j.est), say: usd(j.cost), words: costWords(j) };
    }
    if (j.state === "rejected") {
      return { text: usd(0), title: "rejected: nothing paid", say: "nothing paid", words: "rejected: nothing paid" };
    }
    if (ENDED.has(groupOf(j.state))) {
      return { text: "–", title: "cost not reported", say: "cost not reported", words: "not reported" };
    }
    return { text: "~" + usd(j.est), title: "estimated", say: "estimated " + usd(j.est), cls: "est",
      words: groupOf(j.state) === "pending" ? "not sent: nothing paid" : "not reported" };
  }
  function costText(j, runId) {
    const known = j.cost !== null && j.cost !== undefined;
    const c = costOf(j);
    const by = j.paid || j.cached;
    if (!by || by === runId) return c;
    c.text += " · " + runName(by);
    c.say += " · " + runName(by);
    // `kept`: its re-render in this run was cancelled or failed, its video made earlier (not found cached)
    c.title = (j.cached ? (j.kept ? "made earlier in " : "cached: made in ") + runName(by) : "paid by " + runName(by)) + ", "
      + (known ? costWords(j) : "cost not reported") + "; this run paid nothing for it";
    return c;
  }
  const REPLACED = "its video is no longer kept (replaced or edited since)";
  const EDITED = "its video was replaced or edited since";
  // a done job whose video file is gone (deleted), not replaced: the latest run's is fetched again, as `plan` says,
  // while the provider still serves it (its download link expires: the run then records it expired)
  // (as report.py `_gone_text` says it, in the table for a browser without JavaScript)
  const gone = (j, r) => (!j.missing
    ? (RUNS[r].latest && !j.later ? EDITED + ": `gridrun run` keeps that file under .runs/superseded/ and fetches the"
      + " video again (free) while its download link lasts (else `gridrun retry` renders it again, paid)" : REPLACED)
    : "video file missing" + (RUNS[r].latest ? ": `gridrun run` fetches it again (free) while its download link lasts"
      + " (else `gridrun retry` renders it again, paid)" : " (deleted since)"));
  // a done job whose video is there but this user may not read it (a teammate's file or folder): not missing, and
  // nothing to render again; `unread` names it and its owner and mode
  const unreadable = (j) => "video not readable here (permission denied): " + j.unread
    + "; it is there, paid for: its owner can make it readable to you";
  // what a job's attempts count (the export's `attempts`): not only the paid ones
  const ATTEMPTS = "renders of this job sent to the provider so far, by every run of every manifest sharing the state:"
    + " failed and free ones included, not only paid ones";
  // a done job whose re-render in this run (--force) failed: done as it was, its earlier video kept
  const rerunFailed = (j) => "re-render (--force) failed, the earlier video kept" + (j.rerr ? ": " + j.rerr : "");
  // a done job whose re-render in this run (--force, retry) was cancelled at the provider (`rcan`), in the words
  // of `status`: done as it was, its earlier video kept, no new take
  const RERUN_CANCELLED = "re-render (--force, retry) cancelled at the provider: the earlier video kept, the job done as before";
  // `stopped`: a job in flight when its run ended or its process went (killed), which nothing works on now
  function placeholder(j, stopped, r) {
    const g = groupOf(j.state);
    if (g === "pending") return "pending";
    if (g === "running") return stopped ? j.state + " when the run stopped" : j.state + "…";
    if (j.state === "done") return j.replaced ? gone(j, r || 0) : j.unread ? unreadable(j) : "done (no file)";
    return stateLabel(j.state);
  }
  // A job re-rendered (--force, retry) whose earlier video is still at its path shows that take, kept until the
  // new one arrives (for good when the re-render is cancelled or fails); `stopped` as for placeholder.
  function rerenderNote(j, stopped) {
    const rr = j.rerender;
    const take = (rr.run ? runName(rr.run) + "'s take" : "the earlier take") + (rr.cost !== undefined ? " (" + usd(rr.cost) + ")" : "");
    // on an earlier run's page: the take the job had when the run stopped, kept aside since, or not kept
    const kept = " " + (rr.gone ? "was its video, replaced by a later take and not kept"
      : rr.aside ? "shown, kept aside since a later take replaced it" : "shown, kept until a new one arrives");
    if (groupOf(j.state) === "pending") return "to be re-rendered: " + take + kept;
    if (j.state === "unknown") return "re-render of unknown outcome: " + take + kept;
    if (stopped) return "re-render left in flight: " + take + kept;
    return "re-rendering: " + take + " shown until the new one arrives";
  }
  // A done job the run is to render again (--force) and has not sent: its video the earlier take, as it was; once
  // the run stopped (`stopped`), not re-rendered.
  function unsentNote(j, stopped) {
    const by = j.paid || j.cached;
    const take = (by ? runName(by) + "'s take" : "the earlier take") + (j.cost !== undefined && j.cost !== null ? " (" + usd(j.cost) + ")" : "");
    return stopped ? "not re-rendered: the run stopped before sending it; " + take + " kept"
      : "to be re-rendered: " + take + " shown, kept until a new one arrives";
  }
  function pane(it, j, r, big) {
    const p = h("div", { class: "pane" });
    if (NRUNS > 1) p.append(h("span", { class: "run-tag", text: "AB"[r] }));
    if (!j) {
      p.append(h("div", { class: "thumb missing" }, h("span", { class: "ph", text: "not in run " + RUNS[r].id })));
      return p;
    }
    const g = groupOf(j.state);
    // the run's status as `status` shows it: `gone` for one whose process died unrecorded (process_gone)
    const stopped = g === "running" && (RUNS[r].status !== "running" || (r === 0 && runGone));
    const thumb = h("div", { class: "thumb g-" + g + (stopped ? " stopped" : ""),
      style: j.w && j.h ? "aspect-ratio: " + j.w + " / " + j.h : null });
    if (j.src) {
      thumb.dataset.src = j.src;
      thumb.dataset.label = thumbLabel(it, r);  // names its video and poster
      if (j.poster) thumb.dataset.poster = j.poster;
      if (j.dur) thumb.dataset.dur = j.dur;
      if (big) viewerVideo(thumb);
      else watch(thumb);
    } else {
      const replaced = it.overwritten === r;
      // a job in flight keeps its state for stopLive, which says where the run left it
      thumb.append(h("span", { class: "ph", "data-state": !replaced && g === "running" ? j.state : null,
        text: replaced ? "file replaced by the other run" : placeholder(j, stopped, r) }));
    }
    p.append(thumb);
    if (big) return p;
    const c = costText(j, RUNS[r].id);
    p.append(h("div", { class: "meta" },
      h("span", { class: "badge g-" + g, title: j.state, text: stateLabel(j.state) }),
      h("span", { class: "cost" + (c.cls ? " " + c.cls : "") + (it.dcost ? " kv diff" : ""), title: c.title, text: c.text }),
      j.rs !== undefined ? h("span", { class: "rs", title: "render time", text: secs(j.rs) }) : null,
      j.att > 1 ? h("span", { title: ATTEMPTS, text: j.att + " attempts" }) : null));
    if (j.err) p.append(h("div", { class: "err", dir: "auto", title: j.err, text: j.err }));
    // the card names the error first (its two lines show little more); its title and the details view say all
    if (j.rerr !== undefined) p.append(h("div", { class: "err", dir: "auto", title: rerunFailed(j), text: "re-render failed" + (j.rerr ? ": " + j.rerr : "") }));
    if (j.rcan) p.append(h("div", { class: "rerender rerun-cancelled", title: RERUN_CANCELLED, text: RERUN_CANCELLED }));
    if (j.unsent) {
      const gone = RUNS[r].status !== "running" || (r === 0 && runGone);
      const note = unsentNote(j, gone);
      p.append(h("div", { class: "rerender unsent", title: note, text: note, "data-unsent": gone ? null : JSON.stringify({ paid: j.paid, cached: j.cached, cost: j.cost }) }));
    }
    if (j.rerender) {
      const note = rerenderNote(j, stopped);
      p.append(h("div", { class: "rerender", title: note, text: note, "data-state": !stopped && g === "running" ? j.state : null,
        "data-rerender": !stopped && g === "running" ? JSON.stringify(j.rerender) : null }));
    }
    return p;
  }
  // What a screen reader says of a card: its key, then (each run's) status, cost and error, in brief; with the
  // card drawn (`c`), a video whose file is missing.
  function cardLabel(it, c) {
    const panes = c ? c.querySelectorAll(".panes > .pane") : [];
    const says = it.jobs.map((j, r) => {
      const run = NRUNS > 1 ? "run " + "AB"[r] + ": " : "";
      if (!j) return run + "not in run " + RUNS[r].id;
      const cost = costText(j, RUNS[r].id);
      // a video this page knows is gone (deleted, replaced since), or one the browser found missing
      const lost = j.state === "done" && j.replaced ? ", " + (j.missing ? "video file missing"
        : RUNS[r].latest && !j.later ? EDITED : REPLACED) : "";
      const broken = !lost && panes[r] && panes[r].querySelector(".thumb.broken");
      const stopped = groupOf(j.state) === "running" && (RUNS[r].status !== "running" || (r === 0 && runGone));
      // (a page opened apart from its folder finds none of its videos: the cells say where they looked)
      const notFound = document.body.classList.contains("away") ? ", not found beside this page" : ", video file missing";
      const parts = [(stopped ? placeholder(j, true) : stateLabel(j.state)) + (lost || (broken ? notFound : "")), cost.say];
      if (j.err) parts.push(brief(j.err, 80));
      if (j.rerr !== undefined) parts.push(brief(rerunFailed(j), 80));
      if (j.rcan) parts.push(RERUN_CANCELLED);
      if (j.unsent) parts.push(unsentNote(j, RUNS[r].status !== "running" || (r === 0 && runGone)));
      if (j.rerender) parts.push(rerenderNote(j, stopped));
      return run + parts.join(", ");
    });
    return keyText(it) + (it.by ? " (" + pairedText(it) + ")" : "") + ": " + says.join("; ");
  }
  // A job's key; a job the two runs have under different keys (its hash the same) as "key A → key B", and so two
  // jobs paired as counterparts (`by`: the axes both runs have, or the output path, matched them one to one).
  function keyText(it) { return it.was ? it.was + " → " + it.key : it.key; }
  const PAIRED = { axes: "paired by the axes both runs have", path: "paired by output path" };
  const pairedText = (it) => PAIRED[it.by] + ": not the same job";
  // A matrix key's value in each run of two counterparts that differ on it (`av`): "(none in A) → dusk".
  const avText = (vals) => vals.map((v, r) => (v === null ? "(none in " + "AB"[r] + ")" : v)).join(" → ");
  // (an own property only: an axis may be named __proto__)
  const avOf = (it, id) => (it.av && Object.prototype.hasOwnProperty.call(it.av, id) ? it.av[id] : null);
  // A card is made in two steps: its box (its name, its place in the grid and in the keyboard's order, what a click
  // or a key does) for every job shown, and what it shows (`fill`) only for the cards near the view: a grid of
  // 10,000 cards is 10,000 small boxes, not 180,000 elements, which every frame would otherwise style. A card
  // scrolled far away is emptied again (`empty`), so that scrolling through the whole grid leaves it as small.
  function card(n) {
    const it = ITEMS[n];
    const cls = "card shell" + (it.only ? " only-" + it.only : "") + (differs(it) ? " differs" : "");
    const c = h("article", { class: cls, tabindex: -1, role: "button", "aria-label": cardLabel(it), "data-i": n, "data-key": it.key });
    shellPosters(c, it);
    return c;
  }
  // The cards' clicks and keys, once for the whole grid (not three listeners a card).
  $grid.addEventListener("click", (e) => {
    const c = e.target.closest && e.target.closest(".card");
    if (c && $grid.contains(c) && !e.target.closest("button")) openViewer(Number(c.dataset.i));
  });
  // a card tabbed to is shown whole: the browser leaves one partly in view where it is (the last column of a
  // grid wider than the window, its focus ring and status off screen)
  $grid.addEventListener("focusin", (e) => {
    const c = e.target;
    if (!c.classList || !c.classList.contains("card")) return;
    fill(c);
    if (!quietFocus && c.matches(":focus-visible")) c.scrollIntoView({ block: "nearest", inline: "nearest" });
  });
  // the key press must end here: the viewer's buttons take focus as it opens
  $grid.addEventListener("keydown", (e) => {
    const c = e.target;
    if (c.classList && c.classList.contains("card") && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      openViewer(Number(c.dataset.i));
    }
  });
  const filled = (c) => !c.classList.contains("shell");
  function fill(c) {
    if (filled(c)) return;
    const n = Number(c.dataset.i);
    if (fillObs) fillObs.unobserve(c);
    const posters = new Map(Array.from(c.children, (img) => [img.getAttribute("src"), img]));
    c.replaceChildren();
    c.classList.remove("shell");
    c.setAttribute("aria-describedby", "card-" + n + "-says");
    cardBody(c, n);
    for (const t of c.querySelectorAll(".thumb[data-poster]")) {
      const img = posters.get(t.dataset.poster);
      if (img && !t.firstElementChild) t.append(img);
    }
    if (farObs) farObs.observe(c);
    // a ▶ playing the cells this card is one of: its video joins them
    if (session && session.within && session.within(c)) for (const t of thumbsIn(c)) session.thumbs.add(t);
  }
  // A card far from the view back to its box: its players given back, unless it holds the focus or a video
  // that plays on its own (the details view's, the one ▶ of the page playing).
  function empty(c) {
    if (!filled(c) || c.contains(document.activeElement) || printing) return;
    const thumbs = Array.from(c.querySelectorAll(".thumb"));
    if (thumbs.some((t) => live.has(t) && busy(live.get(t)) && !(session && session.thumbs.has(t)))) return;
    for (const t of thumbs) {
      if (live.has(t)) release(t);
      near.delete(t);
      if (session) session.thumbs.delete(t);
      for (const o of [posterObs, srcObs, dropObs]) if (o) o.unobserve(t);
    }
    if (farObs) farObs.unobserve(c);
    c.replaceChildren();
    c.removeAttribute("aria-describedby");
    c.classList.add("shell");
    shellPosters(c, ITEMS[Number(c.dataset.i)]);
    if (fillObs) fillObs.observe(c);
  }
  function cardBody(c, n) {
    const inHeads = (i) => i === axisOf(ui.x) || i === axisOf(ui.y) || modeOf(AXES[i].id) !== "stack";
    const it = ITEMS[n];
    const diffs = new Set(it.diff || []);
    const panes = h("div", { class: "panes" });
    it.jobs.forEach((j, r) => panes.append(pane(it, j, r, false)));
    c.append(panes, h("div", { class: "key", dir: "auto", title: keyText(it), text: keyText(it) }));
    const kvs = [];
    const shown = new Set(["prompt"]);
    AXES.forEach((a, i) => {
      shown.add(a.id);
      // counterparts that differ on a key show each run's value, wherever the grid puts the card
      const av = avOf(it, a.id);
      if (av) { kvs.push([a.label, avText(av), true]); return; }
      if (a.values.length < 2 || inHeads(i)) return;
      kvs.push([a.label, valueText(a.values[it.ix[i]]), diffs.has(a.id)]);
    });
    const keys = new Set();
    for (const j of it.jobs) if (j) for (const k of Object.keys(j.p)) if (!shown.has(k)) keys.add(k);
    for (const k of keys) {
      const vals = Array.from(new Set(it.jobs.filter((j) => j).map((j) => (hasParam(j, k) ? show(param(j, k)) : "(not set)"))));
      kvs.push([k, vals.join(" → "), diffs.has(k)]);
    }
    if (kvs.length) {
      c.append(h("div", { class: "vals" }, ...kvs.map(([k, v, d]) => h("span", { class: "kv" + (d ? " diff" : ""), title: k + " = " + v }, h("b", { text: k }), "=", h("bdi", { text: v })))));
    }
    // Each run's prompt when they differ (compare), else the one.
    const prompts = Array.from(new Set(it.jobs.filter((j) => j && hasParam(j, "prompt")).map((j) => show(param(j, "prompt")))));
    // The lines under the panes, which the card's name leaves out (its button role hides its text from a screen
    // reader), are its description.
    const says = h("div", { id: "card-" + n + "-says" });
    for (const prompt of prompts) says.append(h("div", { class: "prompt" + (prompts.length > 1 ? " diff" : ""), dir: "auto", title: prompt, text: prompt }));
    const delta = (text) => says.append(h("div", { class: "delta", text: "Δ " + text }));
    if (it.diff) delta(it.diff.join(", "));
    if (it.dstate) delta("status " + it.jobs.map((j) => stateLabel(j.state)).join(" → "));
    // what run B paid less what run A paid for the job (each run's $0 for a take it cached or another run paid
    // for, and for a job nobody paid for, never its estimate)
    if (it.dcost) delta("paid " + (it.dcost > 0 ? "+" : "−") + usd(Math.abs(it.dcost)) + (it.same ? " (the same video)" : ""));
    // the run that sent run B's take, and the one that paid for it where another (it collected what a killed run sent)
    const made = it.jobs[1];
    if (it.take) delta("new take" + (!made.paid ? "" : made.sent ? " (sent by " + runName(made.sent) + ", paid in " + runName(made.paid) + ")"
      : " (rendered in " + runName(made.paid) + ")"));
    if (it.by) says.append(h("div", { class: "pair-note", text: pairedText(it) }));
    // a job that matches several of the other run's on their shared axes is left unpaired, not guessed
    if (it.only) says.append(h("div", { class: "only-note", text: "only in run " + RUNS[it.only === "a" ? 0 : 1].id
      + (it.amb ? " · not paired: " + it.amb[0] + " of run " + RUNS[0].id + " and " + it.amb[1] + " of run " + RUNS[1].id
        + " match on the axes both runs have" : "") }));
    c.append(says);
  }

  // ---- the large view ---------------------------------------------------------------------------------
  let current = -1;
  const $viewerSays = h("p", { class: "sr-only", role: "status" });
  let quietFocus = false;  // focus put back where it was (a reload, the details view closing): no scrolling
  function order() { return Array.from($grid.querySelectorAll(".card"), (c) => Number(c.dataset.i)); }
  function step(d) {
    const o = order();
    const at = o.indexOf(current);
    if (o.length && at >= 0) openViewer(o[(at + d + o.length) % o.length]);
  }
  function openViewer(n) {
    current = n;
    const it = ITEMS[n];
    // named for what they do: a screen reader would read the glyphs ("left arrow", "multiplication x")
    const head = h("div", { class: "viewer-head" },
      h("div", { class: "key", id: "viewer-key", dir: "auto", text: keyText(it) }),
      h("button", { type: "button", id: "viewer-prev", title: "previous (←)", "aria-label": "previous job", text: "←",
        onclick: () => step(-1) }),
      h("button", { type: "button", id: "viewer-next", title: "next (→)", "aria-label": "next job", text: "→",
        onclick: () => step(1) }),
      h("button", { type: "button", id: "viewer-close", title: "close (Esc)", "aria-label": "close the details",
        text: "✕", onclick: () => $viewer.close() }));
    const panes = h("div", { class: "viewer-panes" });
    it.jobs.forEach((j, r) => panes.append(pane(it, j, r, true)));
    stopAll();
    const body = h("div", { class: "viewer-body" + (NRUNS > 1 ? " stacked" : "") }, panes, h("div", { class: "attrs-wrap" }, attrTable(it)));
    // stepping keeps focus on the button that stepped; opening puts it on ✕
    const focused = $viewer.open && $viewer.contains(document.activeElement) ? document.activeElement.id : "";
    // the view is named by its job's key; a step to another job is said (the live region stays, its text changes)
    const stepped = $viewer.open;
    for (const k of Array.from($viewer.children)) if (k !== $viewerSays) k.remove();
    if (!$viewerSays.isConnected) $viewer.append($viewerSays);
    $viewer.append(head, body);
    $viewerSays.textContent = stepped ? cardLabel(it) : "";
    if (!$viewer.open) {
      pinViewer(true);  // the focus it gives the first button would scroll the screen to one off it
      $viewer.showModal();
    }
    pinViewer(false);
    const target = (focused && document.getElementById(focused)) || document.getElementById("viewer-close");
    target.focus();
    // played at once, looping, unless the reader asked for less motion: then the poster, until they press play
    const vids = Array.from($viewer.querySelectorAll("video"));
    if (vids.length && !REDUCED_MOTION.matches) syncPlay(vids);
  }
  // A parameter's name may wrap after its underscores (generate_audio_switch), as a label of words does between
  // them: on a phone one long name would otherwise set the width of the labels' column.
  const breakable = (k) => h("span", null, ...k.split(/(?<=_)/).flatMap((part, i) => (i ? [h("wbr"), part] : [part])));
  function attrTable(it) {
    const jobs = it.jobs;
    const diffs = new Set(it.diff || []);
    const body = h("tbody");
    const section = (title) => body.append(h("tr", { class: "section" }, h("th", { colspan: jobs.length + 1, text: title })));
    const row = (label, f, opts) => {
      const o = opts || {};
      const cells = jobs.map((j, r) => (j ? f(j, r) : "—"));
      const diff = o.diff || (jobs.length > 1 && o.compare !== false && jobs.every((j) => j) &&
        cells.some((c) => (typeof c === "string" ? c : c.textContent) !== (typeof cells[0] === "string" ? cells[0] : cells[0].textContent)));
      // a row that differs between the runs says so in words, not by its tint alone
      body.append(h("tr", { class: diff ? "diff" : null }, h("th", null, label, diff ? h("span", { class: "differs", text: " · differs" }) : null),
        ...cells.map((c) => h("td", { dir: "auto" }, c))));
    };
    section("job");
    row("status", (j) => h("span", { class: "badge g-" + groupOf(j.state), text: stateLabel(j.state) }));
    if (jobs.some((j) => j && j.err)) row("error", (j) => j.err || "");
    if (jobs.some((j) => j && (j.rerr !== undefined || j.rcan))) {
      row("re-render", (j) => (j.rerr !== undefined ? rerunFailed(j) : j.rcan ? RERUN_CANCELLED : ""));
    }
    if (it.sweep) row("sweep", () => it.sweep);
    if (it.by) row("paired", () => pairedText(it), { compare: false });
    AXES.forEach((a, i) => {
      if (a.kind !== "matrix") return;
      const av = avOf(it, a.id);
      if (av) row(a.label, (j, r) => (av[r] === null ? "(none in run " + "AB"[r] + ")" : av[r]), { diff: true });
      else {
        // cut as a head is (a prompt as an axis would push the cost and the output far down), whole in its title;
        // the prompt under "parameters" stays whole
        const t = valueText(a.values[it.ix[i]]);
        row(a.label, () => h("span", { title: t.length > 200 ? t : null, text: brief(t, 200) }), { compare: false });
      }
    });
    // as the card says it: a job never sent (planned) or whose create was refused (rejected) was paid nothing
    const paid = (j) => costOf(j).words;
    // a cached job cost this run nothing: its figures are the run's that made it
    row("cost", (j) => (j.cached ? "none in this run (" + runName(j.paid || j.cached) + ": " + paid(j) + ")" : paid(j)), { diff: !!it.dcost });
    row("estimate", (j) => usd(j.est));
    row("render time", (j) => secs(j.rs), { compare: false });
    row(h("span", { title: ATTEMPTS, text: "attempts (every run)" }), (j) => String(j.att), { compare: false });
    if (jobs.some((j) => j && j.cached)) row("cached from run", (j) => (j.cached ? runName(j.cached).slice(4) : ""));
    row("submitted", (j) => when(j.sub), { compare: false });
    row("completed", (j) => when(j.cmp), { compare: false });
    row("downloaded", (j) => when(j.dl), { compare: false });
    // a job that ended without its video (failed, rejected, unknown, expired, cancelled): when it did
    if (jobs.some((j) => j && j.end)) row("ended", (j) => when(j.end), { compare: false });
    if (jobs.some((j) => j && j.w)) row("size", (j) => (j.w ? j.w + "×" + j.h : "–"));
    if (jobs.some((j) => j && j.dur)) row("duration", (j) => (j.dur ? j.dur + " s" : "–"));
    row("output", (j, r) => (j.src ? h("a", { href: j.src, target: "_blank", rel: "noopener", class: "mono", text: j.src.split("/").map(decodeURIComponent).join("/") }) : j.replaced ? gone(j, r) : j.unread ? unreadable(j) : "–"), { compare: false });
    row("hash", (j) => h("span", { class: "mono", text: j.hash }));
    row("sha256", (j) => h("span", { class: "mono", text: j.sha || "–" }));
    if (jobs.some((j) => j && j.pid)) row("provider id", (j) => h("span", { class: "mono", text: j.pid || "–" }), { compare: false });
    section("parameters");
    for (const k of DATA.paramOrder) {
      if (!jobs.some((j) => hasParam(j, k))) continue;
      const f = k === "prompt"
        ? (j) => h("pre", { class: "prompt-full", dir: "auto", text: show(param(j, k)) })
        : (j) => (hasParam(j, k) ? show(param(j, k)) : "(not set)");
      row(breakable(k), f, { diff: diffs.has(k), compare: false });
    }
    const head = h("thead", null, h("tr", null, h("th", { text: "" }), ...jobs.map((j, r) => h("th", { text: NRUNS > 1 ? "run " + "AB"[r] + " (" + RUNS[r].id + ")" : "run " + RUNS[0].id }))));
    return h("table", { class: "attrs" }, head, body);
  }
  // A phone lays a grid wider than its screen out in a layout viewport as wide as the grid, and centres a modal
  // in that, partly off the screen (the visual viewport, the part of it shown): the details view keeps to what
  // the screen shows instead. Where it fits there as the stylesheet places it (a desktop window), it stays so.
  const VV = window.visualViewport;
  // `always`: pinned without looking where the stylesheet puts it (not open yet)
  function pinViewer(always) {
    const s = $viewer.style;
    s.cssText = "";
    if (!VV || !(always || $viewer.open)) return;
    if (!always) {
      const r = $viewer.getBoundingClientRect();  // a fixed-position box: in the layout viewport, as VV's offsets
      if (r.left >= VV.offsetLeft - 1 && r.right <= VV.offsetLeft + VV.width + 1 && r.top >= VV.offsetTop - 1 &&
          r.bottom <= VV.offsetTop + VV.height + 1) return;
    }
    const width = Math.min(1240, VV.width * 0.96);
    Object.assign(s, { margin: "0", right: "auto", bottom: "auto", width: width + "px", maxWidth: "none",
      maxHeight: VV.height * 0.94 + "px", left: VV.offsetLeft + (VV.width - width) / 2 + "px",
      top: VV.offsetTop + VV.height * 0.03 + "px" });
  }
  // panned or turned, the screen keeps the view; a reader who zoomed in pans over the view itself
  const repin = () => { if ($viewer.open && VV.scale <= 1.01) pinViewer(false); };
  if (VV) { VV.addEventListener("resize", repin); VV.addEventListener("scroll", repin); }
  $viewer.addEventListener("close", () => {
    // The event comes after the close, as a task of its own: a key or click taken first (input goes ahead of it)
    // may have opened the view again on another job, whose content and focus stay.
    if ($viewer.open) return;
    for (const v of $viewer.querySelectorAll("video")) { v.pause(); v.removeAttribute("src"); v.load(); }
    sayLive();
    for (const k of Array.from($viewer.children)) if (k !== $viewerSays) k.remove();
    $viewerSays.textContent = "";
    // back to the card last shown (stepped to with the arrows), not the one the view was opened from
    const shown = $grid.querySelector('.card[data-i="' + current + '"]');
    current = -1;
    if (shown) {
      quietFocus = true;
      shown.focus({ preventScroll: true });
      quietFocus = false;
      shown.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  });
  document.addEventListener("keydown", (e) => {
    if (!$viewer.open || e.defaultPrevented) return;
    // a video's arrows seek, a field's move its caret
    if (e.target.closest && e.target.closest("video, input, select, textarea")) return;
    if (e.key === "ArrowRight") step(1);
    else if (e.key === "ArrowLeft") step(-1);
  });

  // A tap on the view's backdrop (outside its box) closes it, as a sheet on a phone does: a click there lands
  // on the dialog itself, and only a press that began there counts (not a text selection dragged out of it).
  let pressedOut = false;
  const outside = (e) => {
    const r = $viewer.getBoundingClientRect();
    return e.target === $viewer && (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom);
  };
  $viewer.addEventListener("pointerdown", (e) => { pressedOut = outside(e); });
  $viewer.addEventListener("click", (e) => {
    if (pressedOut && outside(e)) $viewer.close();
    pressedOut = false;
  });

  // ---- notes held in titles, for a touch screen ----------------------------------------------------------
  // The header's notes (what a chip counts, which runs paid), a head's whole value where it is cut, and why a
  // cell is empty are titles, which a mouse shows on hover and a touch screen never does: a tap (or a click) on
  // one shows its text beside it, until a tap elsewhere, a scroll or Escape. The header's take keyboard focus
  // too (Enter or Space), where the grid's keys already reach the details.
  const TIPPED = "header.top [title], .group-head [title], .colh .axis-val[title], .rowh .axis-val[title], .cell.filtered[title]";
  const $tip = h("div", { class: "tip", id: "tip", role: "status", hidden: true });
  document.body.append($tip);
  let tipOf = null;
  function hideTip() {
    if (!tipOf) return;
    tipOf.removeAttribute("aria-describedby");
    tipOf = null;
    $tip.hidden = true;
    $tip.textContent = "";
  }
  function showTip(el) {
    hideTip();
    tipOf = el;
    $tip.textContent = el.title;
    $tip.hidden = false;
    el.setAttribute("aria-describedby", "tip");
    const r = el.getBoundingClientRect();
    const w = $tip.offsetWidth, ht = $tip.offsetHeight, vw = document.documentElement.clientWidth;
    $tip.style.left = Math.max(8, Math.min(r.left, vw - w - 8)) + "px";
    $tip.style.top = (r.bottom + 4 + ht <= window.innerHeight || r.top < ht + 8 ? r.bottom + 4 : r.top - ht - 4) + "px";
  }
  // Each has an id made of its run and what it counts, the same on the page a live run writes next, so that the
  // keyboard focus on one comes back to it after a reload.
  const noteIds = new Map();
  for (const el of document.querySelectorAll("header.top .chip[title], header.top small[title]")) {
    Object.assign(el, { tabIndex: 0 });
    el.setAttribute("role", "button");
    const sum = el.closest(".run-summary");
    const what = el.dataset.group || Array.from(el.classList).filter((k) => k !== "chip" && k !== "cached").join("-") ||
      (el.closest("dd[class]") ? el.closest("dd[class]").className : el.tagName.toLowerCase());
    const id = "note-" + (sum ? sum.dataset.run : "compare") + "-" + what;
    const n = (noteIds.get(id) || 0) + 1;
    noteIds.set(id, n);
    if (!el.id) el.id = n > 1 ? id + "-" + n : id;
  }
  document.addEventListener("click", (e) => {
    const el = e.target.closest ? e.target.closest(TIPPED) : null;
    if (el && el !== tipOf && el.title) showTip(el);
    else hideTip();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { hideTip(); return; }
    const el = e.target;
    if ((e.key === "Enter" || e.key === " ") && el.matches && el.matches("header.top [role=button][title]")) {
      e.preventDefault();
      if (el === tipOf) hideTip(); else showTip(el);
    }
  });
  document.addEventListener("scroll", hideTip, { capture: true, passive: true });
  // a chip's tip opened from the keyboard goes when the focus leaves the chip (Tab to the next one)
  document.addEventListener("focusout", (e) => { if (e.target === tipOf) hideTip(); });

  // ---- the header's figures on a narrow screen -------------------------------------------------------------
  readHash();
  // The stylesheet shows, on a narrow screen, only what a run paid and its budget of a folded block; a button
  // after them shows the rest (it is not shown on a wide screen, where every figure is).
  for (const dl of document.querySelectorAll("header.top dl.money")) {
    if (!dl.querySelector(":scope > div:not(.lead)")) continue;
    dl.id = dl.id || "money-" + (dl.closest(".run-summary").dataset.run || "");
    const run = dl.closest(".run-summary").dataset.run || "";
    const more = h("button", { type: "button", class: "money-more", id: "money-more-" + run, "aria-controls": dl.id });
    // opened, they stay open through the live page's reloads (the address keeps which)
    const fold = (folded) => {
      dl.classList.toggle("folded", folded);
      more.setAttribute("aria-expanded", String(!folded));
      more.textContent = folded ? "all figures ▾" : "fewer figures ▴";
    };
    fold(!ui.figures.includes(run));
    more.addEventListener("click", () => {
      const folded = !dl.classList.contains("folded");
      fold(folded);
      ui.figures = ui.figures.filter((r) => r !== run).concat(folded ? [] : [run]);
      writeHash();
    });
    // beside the figures left, on their line when it has room
    const row = h("div", { class: "money-row" });
    dl.replaceWith(row);
    row.append(dl, more);
  }

  // ---- wiring -------------------------------------------------------------------------------------------
  function update(rebuildBar) {
    if (rebuildBar) buildToolbar();
    renderGrid();
  }
  readHash();
  buildToolbar();
  renderGrid();
  window.addEventListener("resize", () => { fitSize(); applySize(); });
  // A printout holds every card, not only those scrolled near: each is filled, its posters loaded now, not once
  // near the view (the page shown as print, `matchMedia`; a print itself loads the lazy ones it holds). A player
  // that does not play is given back for its poster's <img>, which a script printing the page waits for as for the
  // others (its `document.images`), where a <video>'s poster loading it could not; the cells near the view get
  // their players again once printing ends.
  const posterAll = () => {
    printing = true;
    for (const [t, v] of Array.from(live)) if (v.paused) release(t);
    for (const c of $grid.querySelectorAll(".card.shell")) fill(c);
    for (const t of $grid.querySelectorAll(".thumb[data-poster]")) posterOf(t);
    for (const img of $grid.querySelectorAll(".thumb > img[loading]")) img.loading = "eager";
  };
  const printed = () => {
    printing = false;
    for (const t of near) if (!live.has(t) && t.isConnected) videoOf(t);
  };
  window.addEventListener("beforeprint", posterAll);
  window.addEventListener("afterprint", printed);
  matchMedia("print").addEventListener("change", (e) => { if (e.matches) posterAll(); else printed(); });
  // The live page reloads while the run goes on, and comes back to the card the user was looking at (cards
  // above it may have grown or shrunk meanwhile): its key and place in the window are kept for the reload, and
  // so is the keyboard focus (a card's key, or a control's id), which would otherwise go back to the page's top.
  const ANCHOR = "gridrun.place:" + location.pathname;
  function firstVisibleCard() {
    const v = viewBox();
    const top = Math.max(v.top, $bar.getBoundingClientRect().bottom);
    const seen = (r) => r.bottom > top && r.top < v.bottom && r.right > v.left && r.left < v.right;
    // the groups out of view passed over whole (their cards' boxes would cost a layout of each)
    for (const g of $grid.querySelectorAll(":scope > .group")) {
      if (!seen(g.getBoundingClientRect())) continue;
      for (const c of g.querySelectorAll(".card")) if (seen(c.getBoundingClientRect())) return c;
    }
    return null;
  }
  const playNamed = (name) => Array.from($grid.querySelectorAll("button")).filter((b) => b.getAttribute("aria-label") === name);
  const $header = document.querySelector("header.top");
  const headerStops = () => ($header ? Array.from($header.querySelectorAll("[id][tabindex='0'], button[id]")) : []);
  function focusPlace() {
    const f = document.activeElement;
    if (!f || f === document.body) return null;
    if (f.classList.contains("card") && $grid.contains(f)) return { focus: f.dataset.key };
    // a ▶ of the grid: by its name, and which of the buttons so named it is (a row's ▶ is in every grid of grids)
    if (f.tagName === "BUTTON" && $grid.contains(f)) {
      const play = f.getAttribute("aria-label");
      return { play, nth: playNamed(play).indexOf(f) };
    }
    if (f.id && $bar.contains(f)) return { focusId: f.id };
    // a note of the header (a chip), or its figures' button: by its id, and its place among them
    if (f.id && $header && $header.contains(f)) return { focusId: f.id, nth: headerStops().indexOf(f) };
    return null;
  }
  // The card in view and those after it, each with its place in the window: under a status filter the card in
  // view may leave the page that comes (a pending job now running), and the nearest one after it that stays is
  // put back where it was.
  const FOLLOWING = 400;
  function reloadInPlace() {
    const c = window.scrollY || window.scrollX || $grid.scrollTop || $grid.scrollLeft ? firstVisibleCard() : null;
    const place = focusPlace() || {};
    try {
      if (c) {
        const cards = Array.from($grid.querySelectorAll(".card"));
        const after = cards.slice(cards.indexOf(c), cards.indexOf(c) + FOLLOWING).map((e) => {
          const r = e.getBoundingClientRect();
          return [e.dataset.key, r.top, r.left];
        });
        Object.assign(place, { key: c.dataset.key, top: after[0][1], left: after[0][2], after,
                               x: window.scrollX, y: window.scrollY, gx: $grid.scrollLeft, gy: $grid.scrollTop });
        history.scrollRestoration = "manual";
      }
      if (Object.keys(place).length) sessionStorage.setItem(ANCHOR, JSON.stringify(place));
    } catch (e) { /* no session storage: the browser's own scroll restoring stands */ }
    // Served over HTTP, a page the run wrote again within the second its last copy was served is "not modified"
    // to a server that dates files to the second (`python -m http.server`): a plain reload would bring the old
    // page back, the finished page never. It is fetched anew first and read to its end, which replaces the
    // browser's copy that the reload then takes.
    if (/^https?:$/.test(location.protocol)) {
      fetch(location.href, { cache: "reload" }).then((r) => r.blob()).catch(() => null).then(() => location.reload());
    } else {
      location.reload();
    }
  }
  // The card of `key`; where the page that came no longer shows it (a status filter it has left: a running job
  // that ended), the next card shown in the grid's order, or the last one before it.
  function cardNear(key) {
    const cards = Array.from($grid.querySelectorAll(".card"));
    const c = cards.find((e) => e.dataset.key === key);
    if (c || !cards.length) return c || null;
    const n = ITEMS.findIndex((it) => it.key === key);
    if (n < 0) return null;
    const at = orderOf(n);
    return cards.find((e) => cmpArr(orderOf(Number(e.dataset.i)), at) > 0) || cards[cards.length - 1];
  }
  // the control of `id`; one gone (a chip no longer there, "reload while running" on the finished page): the
  // header's control in its place (`nth`), or the toolbar's status
  function controlNear(id, nth) {
    const el = document.getElementById(id);
    if (el && ($bar.contains(el) || ($header && $header.contains(el)))) return el;
    if (typeof nth === "number" && nth >= 0) {
      const stops = headerStops();
      if (stops.length) return stops[Math.min(nth, stops.length - 1)];
    }
    return document.getElementById("ctl-status");
  }
  function restorePlace() {
    let at = null;
    try {
      at = JSON.parse(sessionStorage.getItem(ANCHOR) || "null");
      sessionStorage.removeItem(ANCHOR);
      history.scrollRestoration = "auto";
    } catch (e) { return; }
    if (!at) return;
    // before the scroll place is set again, which focusing must not move
    const focus = typeof at.focus === "string" ? cardNear(at.focus)
      : typeof at.play === "string" ? playNamed(at.play)[Number(at.nth) || 0]
        : typeof at.focusId === "string" && controlNear(at.focusId, at.nth);
    if (focus) {
      quietFocus = true;
      focus.focus({ preventScroll: true });
      quietFocus = false;
    }
    if (typeof at.key !== "string") return;
    const after = Array.isArray(at.after) ? at.after : [[at.key, at.top, at.left]];
    const back = () => {
      const byKey = new Map(Array.from($grid.querySelectorAll(".card"), (e) => [e.dataset.key, e]));
      const hit = after.find((a) => byKey.has(a[0]));
      if (!hit) {  // none of them is shown now: the same scroll offsets
        if (typeof at.y === "number") window.scrollTo(at.x, at.y);
        if (typeof at.gy === "number") $grid.scrollTo(at.gx, at.gy);
        return;
      }
      const r = byKey.get(hit[0]).getBoundingClientRect();
      // the window first, then the grid's own box (a touch screen's) for what the window could not
      const x0 = window.scrollX, y0 = window.scrollY;
      window.scrollBy(r.left - hit[2], r.top - hit[1]);
      $grid.scrollBy(r.left - hit[2] - (window.scrollX - x0), r.top - hit[1] - (window.scrollY - y0));
    };
    back();
    requestAnimationFrame(() => setTimeout(back));  // once the cards now in view are drawn
  }
  // A run going on writes its page again at least every DATA.refresh seconds (`rebuilt_within`: 60 s with nothing
  // moved, and the build's time; more for a long `report_every` or slow builds). A snapshot unchanged for three
  // times as long (room for a slow or missed build and the page's own time between looks) was left by a run
  // that no longer writes it, killed say: the page stops reloading and says so. Measured on this tab's clock from
  // the first load that showed the snapshot, kept across reloads: the clock of the machine that wrote the page
  // may differ.
  const REFRESH = DATA.refresh || 60;
  const STALE_AFTER = 3 * REFRESH * 1000;
  const SEEN = "gridrun.seen:" + location.pathname;
  function unchangedFor() {
    const taken = RUNS[0].taken;
    let since = Date.now();
    try {
      const was = JSON.parse(sessionStorage.getItem(SEEN) || "null");
      if (was && was.taken === taken && typeof was.at === "number") since = was.at;
      else sessionStorage.setItem(SEEN, JSON.stringify({ taken, at: since }));
    } catch (e) { /* no session storage: each load counts from itself */ }
    return Date.now() - since;
  }
  // A snapshot older by this computer's clock than any difference between two clocks could make it (an hour, past
  // STALE_AFTER) was left by a run that no longer writes it, long ago (a run killed, its folder shared days later):
  // the page says so at once, and its age ("taken 2 days ago"), not after STALE_AFTER on this tab's clock.
  const SKEW = 3600 * 1000;
  function agedBy() {
    const age = Date.now() - RUNS[0].taken * 1000;
    return age > SKEW + STALE_AFTER ? age : 0;
  }
  function agoText(ms) {
    const min = Math.floor(ms / 60000), hours = Math.floor(min / 60), days = Math.floor(hours / 24);
    return days >= 2 ? days + " days" : hours >= 2 ? hours + " hours" : min + " min";
  }
  // why a live page does not reload now ("": it does)
  function pausedWhy() {
    if (!reloading) return "";
    if (!ui.reload) return "paused: not reloading, this page may be behind the run";
    if ($viewer.open) return "paused while the details view is open";
    if (playing()) return "paused while videos play";
    return "";
  }
  function sayLive() {
    if ($live && $live.isConnected && $live.textContent !== pausedWhy()) $live.textContent = pausedWhy();
  }
  // `age`: how long the snapshot was seen unchanged on this tab's clock, or (`aged`) its age by this computer's;
  // `ended`: what the stamp says of the run, ended where it could not write this page over (a full disk)
  function stopLive(age, aged, ended) {
    reloading = false;
    reloadWanted = ui.reload;
    ui.reload = false;
    // its jobs in flight, drawn already, show as the page rebuilt after the run stopped does: no spinner, and
    // counted "left in flight" (the status filter, the header's chip), the toolbar's count kept
    runGone = true;
    buildToolbar();
    const chip = document.querySelector('.run-summary .chip[data-group="running"]');
    if (chip && chip.lastChild && chip.lastChild.nodeType === 3) chip.lastChild.data = " " + groupLabel("running");
    for (const ph of document.querySelectorAll(".thumb.g-running:not(.stopped) .ph[data-state]")) {
      ph.closest(".thumb").classList.add("stopped");
      ph.textContent = placeholder({ state: ph.dataset.state }, true);
    }
    // the header's count of the re-renders not sent yet says, as the cards do, that the run stopped first
    const unsent = document.querySelector(".run-summary .chip.rerenders-unsent:not(.cached)");
    if (unsent && unsent.lastChild && unsent.lastChild.nodeType === 3) {
      unsent.classList.add("cached");
      unsent.lastChild.data = " not re-rendered (the run stopped first)";
      unsent.title = "done jobs this run was to re-render (--force) and did not: it stopped before sending them; " +
        "their videos are an earlier run's, as they were";
    }
    for (const note of document.querySelectorAll(".pane .rerender[data-unsent]")) {
      note.textContent = note.title = unsentNote(JSON.parse(note.dataset.unsent), true);
      delete note.dataset.unsent;
    }
    for (const note of document.querySelectorAll(".pane .rerender[data-rerender]")) {
      note.closest(".pane").querySelector(".thumb").classList.add("stopped");
      note.textContent = note.title = rerenderNote({ state: note.dataset.state, rerender: JSON.parse(note.dataset.rerender) }, true);
      delete note.dataset.rerender;
    }
    // and the cards' names, of the jobs in flight and those not sent
    const moved = (j) => j && (groupOf(j.state) === "running" || j.unsent);
    for (const c of $grid.querySelectorAll(".card")) {
      const it = ITEMS[Number(c.dataset.i)];
      if (moved(it.jobs[0])) c.setAttribute("aria-label", cardLabel(it, c));
    }
    // the run's own badge no longer says it is running: nothing here knows that now
    const badge = document.querySelector(".run-summary .badge.run-running");
    if (badge) Object.assign(badge, { className: "badge run-stale", textContent: ended ? "out of date" : "not updating",
                                      title: "running when this snapshot was written; " +
                                        (ended ? "the run has ended since" : "its process may be gone") });
    const line = document.querySelector(".run-summary .run-line");
    const text = ended || "This page stopped updating: " + (aged
      ? "its snapshot of run " + RUNS[0].id + " was taken " + agoText(age) + " ago, by this computer's clock"
      : "run " + RUNS[0].id + " wrote no new snapshot of it for " + Math.floor(age / 60000) + " min") +
      ", where a run going on writes one at least every " + Math.round(REFRESH) + " s. Its process may be gone: " +
      "`gridrun status` tells.";
    if (line) line.after(h("p", { class: "stale-note", role: "status", text }));
    watchStamp();
  }
  // every load: the last reload of a run comes to its finished page, which is no longer live
  restorePlace();
  // The run writes, beside each page it writes, the stamp of the page's snapshot (DATA.stamp, a small script):
  // the page loads it every STAMP_EVERY ms and reloads only when the run wrote a newer snapshot (a reload of a
  // big grid draws it again from the start). A script, not a request of the page's own: it loads from file://
  // too. Where it cannot be loaded (a run before it, a folder copied without its .runs/), the page reloads every
  // RELOAD_EVERY ms as it always did.
  // A page that does not look (the user's choice, the details view open, videos playing) sees no new snapshot:
  // the age of its own says nothing of the run. It says it is paused, and its next look tells whether the run
  // still writes the page: the stamp, or without one the next reload (`unchangedFor` as that page loads).
  const STAMP_EVERY = 5000;
  const RELOAD_EVERY = 20000;
  let stamp = DATA.stamp ? "" : "none";  // "": not loaded yet; "ok": it loads; "none": it cannot be had
  let skipped = false;
  let loading = false;
  function loadStamp() {
    if (loading) return;
    loading = true;
    const s = document.createElement("script");
    const done = (taken) => {
      s.remove();
      loading = false;
      if (taken === null) { stamp = "none"; return; }
      stamp = "ok";
      judge(taken);
    };
    window.gridrunStamp = undefined;
    s.onload = () => {
      const st = window.gridrunStamp;
      if (runGone) {  // a page that stopped: written again since?
        s.remove();
        loading = false;
        if (!st || typeof st.taken !== "number") { stamp = "none"; return; }
        stamp = "ok";
        if (!st.ended && st.taken !== RUNS[0].taken) rewritten();
        return;
      }
      // the run ended and could not write this page over: it says so at once, whatever its snapshot
      if (st && st.ended && typeof st.ended.text === "string" && reloading && !pausedWhy()) {
        s.remove();
        loading = false;
        stamp = "ok";
        stopLive(0, false, st.ended.text);
        return;
      }
      done(st && typeof st.taken === "number" ? st.taken : null);
    };
    s.onerror = () => done(null);
    s.src = DATA.stamp + "?t=" + Date.now();
    document.head.append(s);
  }
  // whether the page may look now: not once it stopped, nor while paused (which it says)
  function mayLook() {
    if (!reloading) return false;
    sayLive();
    if (pausedWhy()) { skipped = true; return false; }
    return true;
  }
  // `taken`: the stamp's snapshot (null: none to be had, the page then judges by reloading)
  function judge(taken) {
    if (!reloading || pausedWhy()) return;
    if (taken !== null && taken !== RUNS[0].taken) { reloadInPlace(); return; }
    const age = unchangedFor();
    // a page that skipped looks judges by the stamp, which tells; without one, only a reload does
    if (agedBy() && (taken !== null || !skipped)) { stopLive(agedBy(), true); return; }
    if (age > STALE_AFTER && (taken !== null || !skipped)) { stopLive(age); return; }
    if (taken === null) { reloadInPlace(); return; }
    skipped = false;
  }
  // A page that stopped (its run ended without writing it over, or wrote no new snapshot of it for long) may be
  // written again there: by the `gridrun report` its note names, by its run, slow and not gone after all, or by a
  // new run of its manifest. It keeps looking at its stamp, slowly (every WATCH_EVERY ms for WATCH_FAST ms, then
  // every WATCH_SLOW ms until WATCH_UNTIL), and reloads into that page once the stamp names a snapshot other than
  // its own and no longer says the page there is out of date; a tab that is shown again or gets the focus looks
  // at once and starts its looks anew. Not while the details view is open or videos play.
  const WATCH_EVERY = 10000;
  const WATCH_FAST = 10 * 60000;
  const WATCH_SLOW = 60000;
  const WATCH_UNTIL = 60 * 60000;
  let watchFrom = 0;
  let watchTimer = 0;
  let leaving = false;
  function watchStamp() {
    if (!DATA.stamp || stamp === "none" || leaving) return;
    clearTimeout(watchTimer);
    watchFrom = Date.now();
    lookAgain();
  }
  function lookAgain() {
    watchTimer = 0;
    if (stamp === "none" || leaving) return;
    if (!$viewer.open && !playing()) loadStamp();
    const since = Date.now() - watchFrom;
    if (since < WATCH_UNTIL) watchTimer = setTimeout(lookAgain, since < WATCH_FAST ? WATCH_EVERY : WATCH_SLOW);
  }
  function rewritten() {
    if (leaving || $viewer.open || playing()) return;
    leaving = true;
    clearTimeout(watchTimer);
    reloadInPlace();
  }
  const comeBack = () => { if (runGone && document.visibilityState === "visible") watchStamp(); };
  document.addEventListener("visibilitychange", comeBack);
  window.addEventListener("focus", comeBack);
  // every load: a page that was live judges at once whether its run still writes it
  if (reloading) {
    const age = unchangedFor();
    if (agedBy()) stopLive(agedBy(), true);
    else if (age > STALE_AFTER) stopLive(age);
  } else {
    try { sessionStorage.removeItem(SEEN); } catch (e) { /* nothing kept */ }
  }
  if (reloading) {
    const looks = setInterval(() => {
      if (stamp === "none" || !reloading) clearInterval(looks);
      else if (mayLook()) loadStamp();
    }, STAMP_EVERY);
    // the reloads of old, where the stamp has not loaded (yet)
    setInterval(() => { if (stamp !== "ok" && mayLook()) judge(null); }, RELOAD_EVERY);
  }
  // seconds since the videos of the playing ▶ started (null: none plays)
  const playClock = () => (session && session.start ? (performance.now() - session.start) / 1000 : null);
  window.gridrun = { data: DATA, ui, update, syncPlay, stopAll, attachAll, open: openViewer, maxVideos: MAX_VIDEOS,
                     reload: reloadInPlace, playClock };
})();
