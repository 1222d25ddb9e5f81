// The results page of `mediafind serve`: no build step, no library, nothing
// from the internet. What is shown comes from /api/search, whose body is the
// JSON of `mediafind search --json`; the X-Mediafind-Ids header gives each
// result's index id, which is how files are asked for, and
// X-Mediafind-Thumbnails the address of its picture ("" for a recording),
// X-Mediafind-Words its words around where they matched (JSON).
// Names from the library are only ever set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("search");
const statusLine = $("status");
const grid = $("results");
const start = $("start");
const more = $("more");
const viewer = $("viewer");
const stage = $("stage");
// Thumbnails of the first screenfuls load at once, the rest as they scroll in.
const EAGER_THUMBNAILS = 24;
// The README's words: what matched, and the kinds of file.
const HOW = { visual: "seen", audio: "heard", speech: "said", text: "written" };
const KIND = { image: "photo", video: "video", audio: "recording" };
const KINDS = { image: "photos", video: "videos", audio: "recordings" };
// What /api/info said: the filters' choices, the start page, the page size.
let info = null;

const two = (n) => String(n).padStart(2, "0");

// m:ss (h:mm:ss past an hour); with `tenths`, m:ss.t.
function clock(seconds, tenths = false) {
  if (seconds === null || seconds === undefined) return "";
  const all = Math.floor(seconds * 10 + 1e-6);
  const whole = Math.floor(all / 10);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const shown = hours ? `${hours}:${two(minutes)}:${two(whole % 60)}` : `${minutes}:${two(whole % 60)}`;
  return tenths ? `${shown}.${all % 10}` : shown;
}

// Local time, to the minute, the same in every browser.
function dateTime(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

function counted(n, kind) {
  return `${n} ${n === 1 ? KIND[kind] || kind : KINDS[kind] || kind}`;
}

function listed(items) {
  return items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}` : items.join("");
}

function how(modality) {
  return HOW[modality] || modality;
}

function baseName(path) {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadInfo() {
  const response = await fetch("/api/info");
  if (!response.ok) return;
  info = await response.json();
  const kinds = $("kinds");
  for (const kind of info.kinds) {
    const label = element("label", "check");
    const box = element("input");
    box.type = "checkbox";
    box.name = "type";
    box.value = kind;
    label.append(box, ` ${KINDS[kind] || kind} (${info.files[kind] || 0})`);
    kinds.append(label);
  }
  for (const modality of info.modalities) {
    const option = element("option", "", how(modality));
    option.value = modality;
    $("modality").append(option);
  }
  for (const folder of info.folders) {
    const option = element("option");
    option.value = folder;
    $("folders").append(option);
  }
}

// The search lives in the address's fragment: reloading or going back
// shows the same results, and the server never sees it in a log.
function currentParams() {
  return new URLSearchParams(location.hash.slice(1));
}

function paramsFromForm() {
  const params = new URLSearchParams();
  const query = $("q").value.trim();
  if (query) params.set("q", query);
  for (const box of form.querySelectorAll("input[name=type]:checked")) params.append("type", box.value);
  for (const name of ["modality", "in", "since", "until"]) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function formFromParams(params) {
  $("q").value = params.get("q") || "";
  const kinds = params.getAll("type");
  for (const box of form.querySelectorAll("input[name=type]")) box.checked = kinds.includes(box.value);
  for (const name of ["modality", "in", "since", "until"]) $(name).value = params.get(name) || "";
  if (kinds.length || ["modality", "in", "since", "until"].some((n) => params.get(n))) {
    $("filters").open = true;
  }
}

// Before any search: what the index holds, so a person knows what to ask.
function showStart() {
  if (!info) return;
  const held = info.kinds.filter((kind) => info.files[kind]).map((kind) => counted(info.files[kind], kind));
  if (!held.length) {
    start.replaceChildren(element("p", "", "Nothing is indexed yet: run mediafind index FOLDER, then reload this page."));
    return;
  }
  const parts = [element("p", "holds", `The index holds ${listed(held)}.`)];
  if (info.last_indexed_at) parts.push(element("p", "last", `Last indexed ${dateTime(info.last_indexed_at)}.`));
  const folders = element("ul", "roots");
  for (const root of info.roots) {
    const item = element("li");
    item.append(element("span", "path", root.path));
    if (info.roots.length > 1 && root.last_indexed_at) {
      item.append(element("span", "when", ` indexed ${dateTime(root.last_indexed_at)}`));
    }
    folders.append(item);
  }
  parts.push(element("h2", "", info.roots.length === 1 ? "Its folder" : "Its folders"), folders);
  parts.push(
    element("p", "hint", "“In folder” (under Filters) takes one of these, or a folder inside one by its path from there."),
  );
  start.replaceChildren(...parts);
}

// Filters apply as they change, to the words or the example being shown.
function applyFilters() {
  const params = paramsFromForm();
  const current = currentParams();
  if (!params.get("q")) {
    for (const name of ["like", "like_name"]) if (current.get(name)) params.set(name, current.get(name));
  }
  if (params.toString() !== location.hash.slice(1) && (params.get("q") || params.get("like"))) show(params);
}

// More results: the same search with a larger limit (the API's contract
// stays that of search --json); the cards already seen stay where they are.
function offerMore(asked, count) {
  more.replaceChildren();
  const step = info ? info.limit : 20;
  const most = info ? info.max_limit : 500;
  const limit = Number(asked.get("limit")) || step;
  if (count < limit || limit >= most) return;
  const button = element("button", "", "Show more");
  button.type = "button";
  button.addEventListener("click", () => {
    const params = currentParams();
    params.set("limit", String(Math.min(limit + step, most)));
    show(params);
  });
  more.append(button);
}

function show(params) {
  const next = params.toString();
  if (location.hash.slice(1) === next) run(params);
  else location.hash = next;
}

let searching = 0;

async function run(params) {
  const ticket = ++searching;
  const asked = new URLSearchParams(params);
  const likeName = asked.get("like_name");
  asked.delete("like_name");
  if (!asked.get("q") && !asked.get("like")) {
    grid.replaceChildren();
    more.replaceChildren();
    statusLine.replaceChildren();
    start.hidden = false;
    showStart();
    return;
  }
  start.hidden = true;
  statusLine.textContent = "Searching…";
  const started = performance.now();
  let response;
  try {
    response = await fetch("/api/search?" + asked.toString());
  } catch (error) {
    statusLine.textContent = "The server is not answering (was mediafind serve stopped?)";
    return;
  }
  if (ticket !== searching) return;
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    grid.replaceChildren();
    more.replaceChildren();
    statusLine.textContent = body.error;
    return;
  }
  const results = await response.json();
  const ids = (response.headers.get("X-Mediafind-Ids") || "").split(",").map(Number);
  const pictures = (response.headers.get("X-Mediafind-Thumbnails") || "").split(",");
  const snippets = JSON.parse(response.headers.get("X-Mediafind-Words") || "[]");
  results.forEach((result, index) => { result.snippet = snippets[index] || null; });
  if (ticket !== searching) return;
  grid.replaceChildren(...results.map((result, index) => card(result, ids[index], pictures[index], index)));
  offerMore(asked, results.length);
  const took = Math.round(performance.now() - started);
  const count = results.length === 1 ? "1 result" : `${results.length} results`;
  statusLine.replaceChildren(element("span", "", results.length ? `${count} (${took} ms)` : "Nothing found"));
  if (asked.get("like")) {
    const chip = element("button", "chip", `like ${likeName || "this"} ✕`);
    chip.type = "button";
    chip.title = "Stop searching by example";
    chip.addEventListener("click", () => {
      const without = currentParams();
      without.delete("like");
      without.delete("like_name");
      show(without);
    });
    statusLine.append(" ", chip);
  }
}

// One label for what matched, in the README's words: "heard in a recording
// at 0:03", not "audio · audio".
function matched(result) {
  const at = result.start !== null && result.kind !== "image" ? ` at ${clock(result.start)}` : "";
  return `${how(result.modality)} in a ${KIND[result.kind] || result.kind}${at}`;
}

// Each moment's chip, told apart from the others: moments within the same
// second (short shots) get tenths, and ones that differ in what matched (a
// moment seen and heard) say so. Chips that would still read alike are one
// moment: the best of them (moments come best first), in time order.
function momentChips(moments) {
  const bySecond = new Map();
  for (const m of moments) bySecond.set(clock(m.start), [...(bySecond.get(clock(m.start)) || []), m]);
  const chips = new Map();
  for (const [second, group] of bySecond) {
    const tenths = new Set(group.map((m) => clock(m.start, true))).size > 1;
    const mixed = new Set(group.map((m) => m.modality)).size > 1;
    for (const m of group) {
      const label = (tenths ? clock(m.start, true) : second) + (mixed ? ` ${how(m.modality)}` : "");
      if (!chips.has(label)) chips.set(label, m);
    }
  }
  return [...chips].sort((a, b) => a[1].start - b[1].start);
}

// A result's words around where they matched, those words marked.
function words(result) {
  const quote = element("blockquote", "words");
  const shown = result.snippet ? result.snippet.text : result.text;
  let at = 0;
  quote.append("“");
  for (const [start, end] of result.snippet ? result.snippet.marks : []) {
    quote.append(shown.slice(at, start), element("mark", "", shown.slice(start, end)));
    at = end;
  }
  quote.append(shown.slice(at), "”");
  return quote;
}

function card(result, id, thumbnail, index) {
  const node = element("article", `card ${result.kind}`);
  const name = baseName(result.path);
  const open = element("button", "thumb");
  open.type = "button";
  open.title = result.kind === "image" ? `Show ${name}` : `Play ${name} from ${clock(result.start)}`;
  if (thumbnail) {
    const picture = element("img");
    picture.alt = "";
    picture.decoding = "async";
    if (index >= EAGER_THUMBNAILS) picture.loading = "lazy";
    picture.src = thumbnail;
    picture.addEventListener("error", () => {
      picture.replaceWith(element("span", "glyph", "?"));
      open.title = `${name}: no picture (deleted or changed since it was indexed?)`;
    });
    open.append(picture);
  } else {
    open.append(element("span", "glyph", result.kind === "audio" ? "♪" : "?"));
  }
  if (result.start !== null && result.kind !== "image") open.append(element("span", "at", clock(result.start)));
  open.addEventListener("click", () => play(result, id, result.start));
  node.append(open);

  const about = element("div", "about");
  const title = element("p", "name", name);
  title.title = result.path;
  about.append(title);
  about.append(element("p", "facts", `${result.score.toFixed(2)} · ${matched(result)}`));
  if (result.text) about.append(words(result));
  // The moments in the order they happen; the best one marked.
  const moments = result.moments.filter((m) => m.start !== null);
  const chips = momentChips(moments);
  if (chips.length > 1) {
    const list = element("ul", "moments");
    const best = moments[0];
    for (const [label, moment] of chips) {
      const item = element("li");
      const jump = element("button", moment === best ? "moment best" : "moment", label);
      jump.type = "button";
      jump.title = moment.text ? `“${moment.text}”` : `${how(moment.modality)}, score ${moment.score.toFixed(2)}`;
      jump.addEventListener("click", () => play(result, id, moment.start));
      item.append(jump);
      list.append(item);
    }
    about.append(list);
  }
  if (id) {
    const more = element("button", "more", "More like this");
    more.type = "button";
    more.addEventListener("click", () => moreLike(result, id));
    about.append(more);
  }
  node.append(about);
  return node;
}

function play(result, id, start) {
  if (!id) return;
  const name = baseName(result.path);
  $("viewer-title").textContent = start !== null && result.kind !== "image" ? `${name} at ${clock(start)}` : name;
  stage.replaceChildren();
  if (result.kind === "image") {
    const picture = element("img");
    picture.alt = name;
    picture.src = `/media/${id}`;
    // Photos a browser cannot show (HEIC, TIFF): their thumbnail instead.
    picture.addEventListener("error", () => (picture.src = `/thumb/${id}`), { once: true });
    stage.append(picture);
  } else {
    const player = element(result.kind === "video" ? "video" : "audio");
    player.controls = true;
    player.autoplay = true;
    player.preload = "auto";
    // A media fragment starts it at the moment; where a browser ignores
    // fragments, the time is set once the length is known.
    player.src = `/media/${id}` + (start !== null ? `#t=${start}` : "");
    player.addEventListener(
      "loadedmetadata",
      () => {
        if (start !== null && Math.abs(player.currentTime - start) > 0.05) player.currentTime = start;
      },
      { once: true },
    );
    player.addEventListener("error", () => {
      stage.replaceChildren(element("p", "problem", `${name} cannot be played here (deleted, changed, or a format this browser does not play).`));
    });
    stage.append(player);
  }
  viewer.showModal();
}

function moreLike(result, id) {
  const params = currentParams();
  params.delete("q");
  const moment = result.kind === "image" || result.start === null ? "" : `@${result.start}`;
  params.set("like", `${id}${moment}`);
  params.set("like_name", baseName(result.path) + (moment ? ` at ${clock(result.start)}` : ""));
  formFromParams(params);
  show(params);
  window.scrollTo(0, 0);
}

viewer.addEventListener("close", () => stage.replaceChildren());
$("viewer-close").addEventListener("click", () => viewer.close());
viewer.addEventListener("click", (event) => {
  if (event.target === viewer) viewer.close();
});
// Change events bubble: the kinds' boxes, made from /api/info, included.
$("filters").addEventListener("change", applyFilters);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  show(paramsFromForm());
});
window.addEventListener("hashchange", () => {
  formFromParams(currentParams());
  run(currentParams());
});

loadInfo().then(() => {
  formFromParams(currentParams());
  run(currentParams());
});
