// The studio: one page over the server's API (docs/serving.md). No build step and no library: the text
// streams from POST /v1/samples (Server-Sent Events read from fetch), co-writing runs over WS /v1/write,
// and music is drawn and played from the sample's notes (/v1/samples/ID.notes.json) with the Web Audio API.
"use strict";

const studio = {
  token: new URLSearchParams(location.search).get("token"),
  models: [], model: null, history: [], controller: null,
  audio: null, voices: [], playing: false, notes: null,
  socket: null, state: null, editing: false,
};
window.studio = studio;  // what the browser tests read
const $ = (id) => document.getElementById(id);

function headers(json) {
  const found = json ? { "Content-Type": "application/json" } : {};
  if (studio.token) found.Authorization = "Bearer " + studio.token;
  return found;
}

function withToken(path) {
  return studio.token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(studio.token)}` : path;
}

function problem(error) {
  return (error.field ? error.field + ": " : "") + error.message;
}

async function api(path, body) {
  const response = await fetch(path, { method: body ? "POST" : "GET", headers: headers(Boolean(body)),
                                       body: body ? JSON.stringify(body) : undefined });
  const data = await response.json();
  if (!response.ok) throw new Error(problem(data.error));
  return data;
}

// ---------------------------------------------------------------- models

async function loadModels() {
  const { models } = await api("/v1/models");
  studio.models = models;
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name} (${m.kind})`, m.name)));
  choose(models[0].name);
}

function choose(name) {
  const model = studio.models.find((m) => m.name === name);
  studio.model = model;
  const validation = model.validation ? `, validation ${model.validation.bpc} bits per character` : "";
  const defaults = Object.entries(model.sampling_defaults || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  $("card").textContent = `${model.writes || model.kind}. ${model.architecture}, `
    + `${model.vocab_size} characters${validation}${defaults ? "; it writes best at " + defaults : ""}`;
  // Only the inputs this model can use: forms and acrostics for Chinese verse, meters its corpus has.
  document.querySelectorAll(".verse-only").forEach((el) => { el.hidden = !model.chinese_verse; });
  document.querySelectorAll(".music-only").forEach((el) => { el.hidden = model.kind !== "music"; });
  const labels = model.labels || [];
  document.querySelectorAll(".labels-only").forEach((el) => { el.hidden = labels.length === 0; });
  // A model labelled by rhyme draws each poem's group unless told: "drawn" is its default, and "none" a choice.
  const styles = () => [new Option(model.label_drawn ? "drawn, as its corpus's" : "none", ""),
                        ...(model.label_drawn ? [new Option("none", "none")] : []),
                        ...labels.map((name) => new Option(name, name))];
  $("label").replaceChildren(...styles());
  $("together-label").replaceChildren(...styles());
  $("then_label").replaceChildren(new Option("no change", ""), ...styles().slice(1));
  $("temperature").placeholder = String((model.sampling_defaults || {}).temperature ?? 1);
  $("length").placeholder = model.kind === "music" ? "a piece" : "400";
  if (model.kind === "music" && (model.meters || []).length) {
    $("meter").replaceChildren(new Option("any", ""), ...model.meters.map((m) => new Option(m, m)));
  }
}

// ---------------------------------------------------------------- writing

function request() {
  const body = { model: studio.model.name };
  const text = (id) => $(id).value.trim();
  const number = (id) => (text(id) === "" ? null : Number(text(id)));
  if ($("prime").value) body.prime = $("prime").value;
  // A meter is the start of a tune's header: the model writes the rest (key, notes) after it.
  if (studio.model.kind === "music" && $("meter").value && !$("prime").value) body.prime = `M:${$("meter").value} `;
  if (number("temperature") !== null) body.temperature = number("temperature");
  if (number("top_p") !== null && number("top_p") !== 1) body.top_p = number("top_p");
  if (number("length") !== null) body.length = number("length");
  else if (studio.model.kind !== "music" && !text("form") && !text("acrostic")) body.length = 400;
  // A seed is always sent, so every output can be made again.
  body.seed = number("seed") ?? Math.floor(Math.random() * 2 ** 31);
  if (studio.model.chinese_verse) {
    if (text("form")) body.form = text("form");
    if (text("acrostic")) body.acrostic = text("acrostic");
  }
  if ((studio.model.labels || []).length) {
    if ($("label").value) body.label = $("label").value;
    if ($("then_label").value) body.then_label = `${$("then_label").value}@${number("label_after") ?? 0}`;
  }
  if (studio.model.kind === "music") {
    if (text("key")) body.key = text("key");
    if (text("instrument")) body.instrument = text("instrument");
    if (number("bpm") !== null && number("bpm") !== 120) body.bpm = number("bpm");
  }
  return body;
}

function* events(buffer) {
  for (const block of buffer) {
    const line = block.split("\n").find((l) => l.startsWith("data: "));
    if (line) yield JSON.parse(line.slice(6));
  }
}

async function write(event) {
  event.preventDefault();
  if ($("in-browser").checked) return writeInBrowser();
  const body = { ...request(), stream: true };
  $("output").textContent = "";
  $("music").hidden = true;
  studio.controller = new AbortController();
  $("go").disabled = true;
  $("stop").disabled = false;
  showStatus("status", "writing…");
  let record = null;
  try {
    const response = await fetch("/v1/samples", { method: "POST", headers: headers(true), body: JSON.stringify(body),
                                                  signal: studio.controller.signal });
    if (!response.ok) throw new Error(problem((await response.json()).error));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const blocks = pending.split("\n\n");
      pending = blocks.pop();
      for (const item of events(blocks)) {
        if (item.error) throw new Error(problem(item.error));
        if (item.record) record = item.record;
        else if (item.text !== undefined) $("output").textContent += item.text;
      }
    }
    showStatus("status", "done");
    if (record) {
      addHistory(record, body);
      if (studio.model.kind === "music") await showMusic(record);
    }
  } catch (error) {
    if (error.name === "AbortError") showStatus("status", "stopped");
    else showStatus("status", error.message, true);
  } finally {
    $("go").disabled = false;
    $("stop").disabled = true;
  }
}

// ---------------------------------------------------------------- in the browser (onnxruntime-web)

const RUNTIME = "/studio/vendor/onnxruntime-web/";

async function runtime() {
  if (!window.ort) {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = RUNTIME + "ort.wasm.min.js";
      script.onload = resolve;
      script.onerror = () => reject(new Error("the in-browser runtime did not load"));
      document.head.append(script);
    });
    ort.env.wasm.wasmPaths = new URL(RUNTIME, location.href).href;
    ort.env.wasm.numThreads = 1;  // more threads need a cross-origin-isolated page
  }
  return window.ort;
}

// The model's step graph on onnxruntime-web, loaded once per model: one call steps one character.
async function browserModel(model) {
  studio.sessions = studio.sessions || {};
  if (!studio.sessions[model.name]) {
    const ort = await runtime();
    const response = await fetch(withToken(model.browser.graph));
    if (!response.ok) throw new Error(problem((await response.json()).error));
    studio.sessions[model.name] = await ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()),
                                                                    { executionProviders: ["wasm"] });
  }
  return studio.sessions[model.name];
}

// Feeds one character (and the label) with the states; returns the logits and the new states.
async function stepInBrowser(session, facts, id, label, states) {
  const feeds = { ids: new ort.Tensor("int64", BigInt64Array.of(BigInt(id)), [1]) };
  if (facts.label_count) feeds.label = new ort.Tensor("int64", BigInt64Array.of(BigInt(label)), [1]);
  facts.states.forEach((name, k) => { feeds[name] = new ort.Tensor("float32", states[k], [1, facts.state_units]); });
  const out = await session.run(feeds);
  return [out.logits.data, facts.states.map((name) => out[name + "_out"].data)];
}

function pickCharacter(logits, temperature) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (!(temperature > 0)) return best;  // greedy: the first of the likeliest, as the server's argmax
  const weights = Array.from(logits, (l) => Math.exp((l - logits[best]) / temperature));
  let target = Math.random() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) if ((target -= weights[i]) <= 0) return i;
  return best;
}

async function writeInBrowser() {
  const model = studio.model;
  const facts = model.browser;
  const text = (id) => $(id).value.trim();
  const prime = $("prime").value;
  const temperature = text("temperature") === "" ? (model.sampling_defaults || {}).temperature ?? 1 : Number(text("temperature"));
  const length = text("length") === "" ? (model.kind === "music" ? 600 : 400) : Number(text("length"));
  const index = new Map(facts.chars.map((c, i) => [c, i]));
  const start = [...(prime || "\n")];
  const unknown = start.filter((c) => !index.has(c));
  $("output").textContent = "";
  $("music").hidden = true;
  if (unknown.length) {
    showStatus("status", `prime: characters outside the model's vocabulary: ${unknown.join(" ")}`, true);
    return;
  }
  const labels = ["<none>", ...(model.labels || [])];
  const label = Math.max(0, labels.indexOf($("label").value || "<none>"));
  studio.controller = new AbortController();
  $("go").disabled = true;
  $("stop").disabled = false;
  showStatus("status", "loading the model into this browser…");
  try {
    const session = await browserModel(model);
    showStatus("status", "writing in this browser…");
    let states = facts.states.map(() => new Float32Array(facts.state_units));
    let logits;
    for (const c of start) [logits, states] = await stepInBrowser(session, facts, index.get(c), label, states);
    let written = "";
    $("output").textContent = prime;
    for (let n = 0; n < length && !studio.controller.signal.aborted; n++) {
      const id = pickCharacter(logits, temperature);
      if (model.kind === "music" && facts.chars[id] === "\n") break;  // a tune or chorale ends at its line's end
      written += facts.chars[id];
      if (n % 8 === 7 || n === length - 1) $("output").textContent = prime + written;
      [logits, states] = await stepInBrowser(session, facts, id, label, states);
    }
    $("output").textContent = prime + written;
    studio.browserText = prime + written;
    showStatus("status", studio.controller.signal.aborted ? "stopped" : "done in this browser");
    const greedy = !(temperature > 0);
    const words = ["generate", "sample", model.name, ...(prime ? ["--prime", prime] : []), "--length", String(length),
                   // The browser cannot draw a label as the command line does: without one it writes with none.
                   ...(label ? ["--label", labels[label], "--label-strength", "1"] : model.label_drawn ? ["--label", "none"] : []),
                   ...(greedy ? ["--greedy"] : []),
                   // The browser steps the bare model: no well-formedness automata, no pull towards the key.
                   ...(model.kind === "music" ? ["--no-syntax", "--key-penalty", "0"] : [])];
    addHistory({ run: model.name, temperature, length, label: label ? labels[label] : "", in_browser: true,
                 command: greedy ? words.map(shellWord).join(" ")
                   : "sampled in this browser: its random numbers are not the command line's, so no command repeats it" });
  } catch (error) {
    showStatus("status", error.message, true);
  } finally {
    $("go").disabled = false;
    $("stop").disabled = true;
  }
}

function shellWord(word) {
  return /^[A-Za-z0-9_.\/@%,:=+-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

function addHistory(record, asked) {
  studio.history.push(record);
  const item = document.createElement("li");
  // What was asked, not what it resolved to (a tune's length budget, a quatrain's line-derived length): the seed
  // is the record's, since it is always sent or drawn.
  const shown = { ...(asked || record), seed: record.seed };
  const settings = ["seed", "temperature", "top_p", "length", "form", "acrostic", "key", "label", "then_label"]
    .filter((k) => shown[k] !== null && shown[k] !== "" && shown[k] !== undefined).map((k) => `${k} ${shown[k]}`);
  const title = document.createElement("div");
  title.textContent = `${record.run.split("/").pop()}: ${settings.join(", ")}`;
  const command = document.createElement("code");
  command.className = "command";
  command.textContent = record.command;
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "Copy command";
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(record.command);
      copy.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(command);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  const links = document.createElement("div");
  const formats = record.in_browser ? [] : studio.model.kind === "music" ? ["mid", "wav", "png", "score.png", "json"] : ["txt", "json"];
  for (const format of formats) {
    const link = document.createElement("a");
    link.href = withToken(`/v1/samples/${record.id}.${format}`);
    link.download = `${record.id}.${format}`;
    link.textContent = format;
    links.append(link, " ");
  }
  item.append(title, command, copy, ...(formats.length ? [document.createTextNode(" Download: "), links] : []));
  $("history").prepend(item);
}

// ---------------------------------------------------------------- music

async function showMusic(record) {
  const response = await fetch(withToken(`/v1/samples/${record.id}.notes.json`));
  studio.notes = await response.json();
  $("music").hidden = false;
  drawRoll(studio.notes);
  const score = $("score");
  score.hidden = true;
  score.onload = () => { score.hidden = false; };  // an engraved score where the server has LilyPond
  score.onerror = () => { score.hidden = true; };
  score.src = withToken(`/v1/samples/${record.id}.score.png`);
}

function drawRoll(notes) {
  const canvas = $("roll");
  const context = canvas.getContext("2d");
  const all = notes.voices.flat();
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (!all.length) return;
  const end = Math.max(...all.map(([onset, duration]) => onset + duration));
  const low = Math.min(...all.map((n) => n[2])) - 1;
  const high = Math.max(...all.map((n) => n[2])) + 1;
  const x = (beat) => (beat / end) * canvas.width;
  const y = (pitch) => canvas.height - ((pitch - low) / (high - low)) * canvas.height;
  context.strokeStyle = "#c8c8d0";
  for (const bar of notes.bar_lines) {
    context.beginPath();
    context.moveTo(x(bar), 0);
    context.lineTo(x(bar), canvas.height);
    context.stroke();
  }
  const colours = ["#1f4fb8", "#a3311f", "#1d6b3a", "#6b3fa0"];
  notes.voices.forEach((voice, index) => {
    context.fillStyle = colours[index % colours.length];
    for (const [onset, duration, pitch] of voice) {
      context.fillRect(x(onset), y(pitch) - 3, Math.max(x(duration) - 1, 2), 6);
    }
  });
}

function play() {
  if (!studio.notes) return;
  halt();
  studio.audio = new AudioContext();
  const audio = studio.audio;
  const beat = 60 / Number($("tempo").value);
  const start = audio.currentTime + 0.05;
  let end = start;
  for (const voice of studio.notes.voices) {
    for (const [onset, duration, pitch] of voice) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      const from = start + onset * beat;
      const to = from + Math.max(duration * beat - 0.02, 0.05);
      oscillator.type = "triangle";
      oscillator.frequency.value = 440 * 2 ** ((pitch - 69) / 12);
      gain.gain.setValueAtTime(0, from);
      gain.gain.linearRampToValueAtTime(0.15, from + 0.01);
      gain.gain.linearRampToValueAtTime(0, to);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(from);
      oscillator.stop(to + 0.01);
      studio.voices.push(oscillator);
      end = Math.max(end, to);
    }
  }
  studio.playing = true;
  studio.playUntil = setTimeout(halt, (end - audio.currentTime) * 1000 + 100);
}

function halt() {
  clearTimeout(studio.playUntil);
  for (const oscillator of studio.voices) {
    try { oscillator.stop(); } catch { /* not started yet, or ended */ }
  }
  studio.voices = [];
  if (studio.audio) studio.audio.close();
  studio.audio = null;
  studio.playing = false;
}

// ---------------------------------------------------------------- writing together

function connect() {
  if (studio.socket) studio.socket.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(withToken(`${scheme}//${location.host}/v1/write`));
  studio.socket = socket;
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = () => { $("together-status").textContent = "disconnected: press Start"; };
  const options = { candidates: 4, text: $("start-text").value };
  if ((studio.model.labels || []).length && $("together-label").value) options.label = $("together-label").value;
  const seed = $("together-seed").value.trim();
  if (seed !== "") options.seed = Number(seed);
  if (studio.model.chinese_verse) {
    if ($("form").value.trim()) options.form = $("form").value.trim();
    if ($("acrostic").value.trim()) options.acrostic = $("acrostic").value.trim();
  }
  socket.onopen = () => send({ action: "start", model: studio.model.name, options });
  $("together-status").textContent = "drawing…";
}

function send(message) {
  if (!studio.socket || studio.socket.readyState !== WebSocket.OPEN) {
    $("together-status").textContent = "press Start first";
    return;
  }
  studio.socket.send(JSON.stringify(message));
}

function receive(message) {
  if (message.type === "error") {
    showStatus("together-status", problem(message.error), true);
    return;
  }
  if (message.type === "saved") {
    studio.saved = message.record;
    const blob = new Blob([JSON.stringify(message.record, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "session.txt.json";
    link.click();
    $("together-status").textContent = "saved: generate write --replay session.txt.json writes the text again";
    return;
  }
  studio.state = message;
  $("together-text").textContent = message.text;
  const list = message.candidates.map((candidate, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = (message.described || [])[index] || candidate;  // the list numbers it
    button.addEventListener("click", () => send({ action: "take", index }));
    item.append(button);
    return item;
  });
  $("candidates").replaceChildren(...list);
  // A control being typed into keeps what is typed: a state that arrives meanwhile does not overwrite it.
  if (document.activeElement !== $("together-temperature")) $("together-temperature").value = message.temperature;
  if (document.activeElement !== $("together-count")) $("together-count").value = message.count;
  showStatus("together-status", message.done ? "the poem is complete"
    : `draw ${message.draw}, seed ${message.seed}, temperature ${message.temperature}, ${message.count} candidates`);
}

function act(action) {
  if (action !== "edit") {
    send({ action });
    return;
  }
  const editor = $("together-edit");
  if (studio.editing) {
    studio.editing = false;
    editor.hidden = true;
    send({ action: "edit", text: editor.value });
  } else if (studio.state) {
    studio.editing = true;
    editor.value = studio.state.text;
    editor.hidden = false;
    editor.focus();
  }
}

function keys(event) {
  if ($("together").hidden) return;
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
  if (typing) {
    if (event.target.id === "together-edit" && event.key === "Enter" && event.ctrlKey) act("edit");
    if (event.target.id === "together-edit" && event.key === "Escape") {
      studio.editing = false;
      $("together-edit").hidden = true;
    }
    return;
  }
  if (event.ctrlKey && event.key === "r") {
    event.preventDefault();  // not the browser's reload
    act("redo");
  } else if (event.ctrlKey || event.altKey || event.metaKey) {
    return;
  } else if (/^[1-9]$/.test(event.key)) {
    send({ action: "take", index: Number(event.key) - 1 });
  } else if (event.key in { r: 1, u: 1, e: 1, s: 1 }) {
    event.preventDefault();
    act({ r: "reroll", u: "undo", e: "edit", s: "save" }[event.key]);
  } else if (event.key in { t: 1, T: 1, n: 1, N: 1 } && studio.state) {
    // As in the terminal: t and T cool and warm the draws, n and N offer fewer and more candidates.
    event.preventDefault();
    const temperature = event.key === "t" ? -0.1 : event.key === "T" ? 0.1 : 0;
    if (temperature) setTogether("temperature", Math.round((studio.state.temperature + temperature) * 10) / 10);
    else setTogether("count", studio.state.count + (event.key === "N" ? 1 : -1));
  }
}

function setTogether(action, value) {
  const bounds = { temperature: [0.1, 3], count: [1, 9] }[action];
  send({ action, value: Math.min(bounds[1], Math.max(bounds[0], value)) });
}

function showStatus(id, text, failed = false) {
  // An error reads as one, and the next message replaces it.
  $(id).textContent = failed ? "error: " + text : text;
  $(id).classList.toggle("error", failed);
}

// ---------------------------------------------------------------- the page

function showTab(name) {
  for (const tab of ["write", "together"]) {
    $(tab).hidden = tab !== name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("model").addEventListener("change", (event) => choose(event.target.value));
  for (const setting of ["temperature", "count"]) {
    $(`together-${setting}`).addEventListener("change", (e) => {
      // An emptied or unreadable field keeps the session's setting rather than sending 0.
      if (e.target.value.trim() === "" || !Number.isFinite(Number(e.target.value))) {
        if (studio.state) e.target.value = studio.state[setting];
      } else {
        setTogether(setting, Number(e.target.value));
      }
    });
  }
  if (matchMedia("(max-width: 600px)").matches) $("settings").open = false;  // a phone: the prime and Write first
  $("write-form").addEventListener("submit", write);
  $("stop").addEventListener("click", () => studio.controller && studio.controller.abort());
  $("play").addEventListener("click", play);
  $("halt").addEventListener("click", halt);
  $("tempo").addEventListener("input", () => { $("tempo-value").textContent = $("tempo").value; });
  $("tab-write").addEventListener("click", () => showTab("write"));
  $("tab-together").addEventListener("click", () => showTab("together"));
  $("start").addEventListener("click", connect);
  document.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => act(b.dataset.act)));
  document.addEventListener("keydown", keys);
  loadModels().catch((error) => { $("card").textContent = "error: " + error.message; });
});
