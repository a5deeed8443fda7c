/* The reading page: a canvas viewer (window/level, zoom, pan, invert, reset) and the
 * keyboard. Everything works on the image already in the browser: no round trip.
 * The page works without this file (plain forms and an <img>); htmx, when present,
 * swaps #reader after each answer, and this file re-arms itself on the new content.
 */
(function () {
  "use strict";

  const TEXT_INPUT_TYPES = new Set(["text", "search", "email", "number", "password", "tel", "url"]);
  let activeViewer = null;
  let shownAt = performance.now();

  function isTextField(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    const tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && TEXT_INPUT_TYPES.has((element.type || "text").toLowerCase());
  }

  /* ---- the viewer ------------------------------------------------------------------ */

  class Viewer {
    constructor(root) {
      this.root = root;
      this.img = root.querySelector("img");
      this.canvas = root.querySelector("canvas");
      this.status = root.querySelector("[data-viewer-status]");
      this.context = this.canvas.getContext("2d");
      this.buffer = document.createElement("canvas");
      this.bufferContext = this.buffer.getContext("2d", { willReadFrequently: true });
      this.grey = null;
      this.lut = new Uint8ClampedArray(256);
      this.drag = null;
      this.frame = 0;
      this.lutDirty = true;
      this.resetView();
      this.bind();
      if (this.img.complete && this.img.naturalWidth) this.load();
      else this.img.addEventListener("load", () => this.load(), { once: true });
    }

    resetView() {
      this.window = 256;
      this.level = 128;
      this.zoom = 1;
      this.panX = 0;
      this.panY = 0;
      this.inverted = false;
      this.lutDirty = true;
    }

    load() {
      const width = this.img.naturalWidth;
      const height = this.img.naturalHeight;
      this.buffer.width = width;
      this.buffer.height = height;
      this.bufferContext.drawImage(this.img, 0, 0);
      const source = this.bufferContext.getImageData(0, 0, width, height).data;
      this.grey = new Uint8ClampedArray(width * height);
      for (let i = 0; i < this.grey.length; i += 1) this.grey[i] = source[i * 4];
      this.pixels = this.bufferContext.createImageData(width, height);
      this.lutDirty = true;
      this.root.classList.add("ready");
      if (!this.shownOnce) {
        // Time on case counts from the first showing, not from a CT window switch.
        this.shownOnce = true;
        shownAt = performance.now();
      }
      this.draw();
      const next = this.root.dataset.nextImage;
      if (next) {
        const preload = new Image();
        preload.decoding = "async";
        preload.src = next;
      }
    }

    /* A CT preset: the server's derivative in that window (same size, same headers). */
    showWindow(name) {
      const url = this.root.getAttribute(`data-window-${name}`);
      if (!url || this.root.dataset.currentWindow === name) return false;
      this.root.dataset.currentWindow = name;
      this.root.classList.remove("ready");
      this.img.addEventListener("load", () => this.load(), { once: true });
      this.img.src = url;
      return true;
    }

    applyWindow() {
      const low = this.level - this.window / 2;
      for (let value = 0; value < 256; value += 1) {
        let unit = (value - low) / this.window;
        unit = unit < 0 ? 0 : unit > 1 ? 1 : unit;
        if (this.inverted) unit = 1 - unit;
        this.lut[value] = Math.round(unit * 255);
      }
      const out = this.pixels.data;
      const grey = this.grey;
      const lut = this.lut;
      for (let i = 0, j = 0; i < grey.length; i += 1, j += 4) {
        const v = lut[grey[i]];
        out[j] = v;
        out[j + 1] = v;
        out[j + 2] = v;
        out[j + 3] = 255;
      }
      this.bufferContext.putImageData(this.pixels, 0, 0);
      this.lutDirty = false;
    }

    draw() {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.paint();
      });
    }

    paint() {
      if (!this.grey) return;
      if (this.lutDirty) this.applyWindow();
      const ratio = window.devicePixelRatio || 1;
      const box = this.canvas.getBoundingClientRect();
      const width = Math.max(1, Math.round(box.width * ratio));
      const height = Math.max(1, Math.round(box.height * ratio));
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      const context = this.context;
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.fillStyle = "#000";
      context.fillRect(0, 0, width, height);
      const scale = Math.min(width / this.buffer.width, height / this.buffer.height) * this.zoom;
      context.translate(width / 2 + this.panX * ratio, height / 2 + this.panY * ratio);
      context.scale(scale, scale);
      context.imageSmoothingEnabled = scale < 4;
      context.imageSmoothingQuality = "high";
      context.drawImage(this.buffer, -this.buffer.width / 2, -this.buffer.height / 2);
      if (this.status) {
        const parts = [`W ${Math.round(this.window)}`, `L ${Math.round(this.level)}`, `${Math.round(this.zoom * 100)}%`];
        if (this.inverted) parts.push("inverted");
        this.status.textContent = parts.join("  ·  ");
      }
    }

    zoomBy(factor, atX, atY) {
      const zoom = Math.min(16, Math.max(0.25, this.zoom * factor));
      const applied = zoom / this.zoom;
      // Keep the point under the cursor (relative to the canvas centre) where it is.
      const box = this.canvas.getBoundingClientRect();
      const x = (atX ?? box.left + box.width / 2) - (box.left + box.width / 2);
      const y = (atY ?? box.top + box.height / 2) - (box.top + box.height / 2);
      this.panX = x - (x - this.panX) * applied;
      this.panY = y - (y - this.panY) * applied;
      this.zoom = zoom;
      this.draw();
    }

    invert() {
      this.inverted = !this.inverted;
      this.lutDirty = true;
      this.draw();
    }

    reset() {
      this.resetView();
      this.draw();
    }

    bind() {
      const canvas = this.canvas;
      canvas.addEventListener("contextmenu", (event) => event.preventDefault());
      canvas.addEventListener("pointerdown", (event) => {
        const pan = event.shiftKey || event.button === 1 || event.button === 2;
        this.drag = { mode: pan ? "pan" : "window", x: event.clientX, y: event.clientY };
        canvas.setPointerCapture(event.pointerId);
        event.preventDefault();
      });
      canvas.addEventListener("pointermove", (event) => {
        if (!this.drag) return;
        const dx = event.clientX - this.drag.x;
        const dy = event.clientY - this.drag.y;
        this.drag.x = event.clientX;
        this.drag.y = event.clientY;
        if (this.drag.mode === "pan") {
          this.panX += dx;
          this.panY += dy;
        } else {
          this.window = Math.min(512, Math.max(1, this.window + dx));
          this.level = Math.min(384, Math.max(-128, this.level + dy));
          this.lutDirty = true;
        }
        this.draw();
      });
      const stop = () => {
        this.drag = null;
      };
      canvas.addEventListener("pointerup", stop);
      canvas.addEventListener("pointercancel", stop);
      canvas.addEventListener("dblclick", () => this.reset());
      canvas.addEventListener(
        "wheel",
        (event) => {
          event.preventDefault();
          this.zoomBy(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
        },
        { passive: false },
      );
      if (window.ResizeObserver) new ResizeObserver(() => this.draw()).observe(canvas);
    }
  }

  function arm(scope) {
    const root = (scope || document).querySelector("[data-viewer]");
    if (!root) activeViewer = null;
    if (!root || root.dataset.armed) return;
    root.dataset.armed = "1";
    activeViewer = new Viewer(root);
    shownAt = performance.now();
  }

  /* ---- answering ------------------------------------------------------------------- */

  const WINDOW_KEYS = { w: "study", l: "lung", m: "mediastinum", b: "bone", n: "brain" };

  function tooSoon() {
    const root = document.querySelector("#reader [data-viewer]");
    const minimum = root ? Number(root.dataset.minViewMs || 0) : 0;
    return minimum > 0 && performance.now() - shownAt < minimum;
  }

  function answerForm() {
    return document.querySelector("#reader form[data-answer-form]");
  }

  function stampClientTime(form) {
    const field = form && form.querySelector('input[name="client_ms"]');
    if (field) field.value = String(Math.max(0, Math.round(performance.now() - shownAt)));
  }

  function flash(element) {
    if (!element) return;
    element.classList.remove("flash");
    void element.offsetWidth; // restart the animation
    element.classList.add("flash");
  }

  function press(form, selector) {
    const control = form.querySelector(selector);
    if (!control) return false;
    if (control.type === "radio") {
      control.checked = true;
      return true;
    }
    if (control.type === "submit") {
      const needsAnswer = form.querySelector('input[type="radio"][name="answer"]');
      if (needsAnswer && !form.querySelector('input[type="radio"][name="answer"]:checked')) {
        flash(form.querySelector("fieldset.answers"));
        return true;
      }
      stampClientTime(form);
      control.click();
      return true;
    }
    return false;
  }

  function busy(form) {
    return form.classList.contains("htmx-request") || retry !== null;
  }

  /* ---- connection problems: the same answer is sent again until the server has it -------- */

  // The server records an answer once per slot and takes the very same answer again as a
  // no-op, so sending it again after an error can never store it twice.
  const RETRY_FIRST_MS = 500;
  const RETRY_MAX_MS = 15000;
  const RETRY_MESSAGE = "Connection problem: your answer was not saved yet; retrying\u2026";
  let lastAnswer = null; // {path, values} of the answer on its way
  let retry = null; // {path, values, attempt, timer} while an answer waits to be sent again

  function connectionStatus(text) {
    const box = document.getElementById("connection-status");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  function isAnswerRequest(detail) {
    // After a swap htmx reports on an ancestor (detail.elt); the request keeps its own element.
    const config = (detail && detail.requestConfig) || detail || {};
    const elt = config.elt || (detail && detail.elt);
    const verb = config.verb;
    const post = String(verb || "").toLowerCase() === "post";
    return Boolean(post && elt && elt.matches && elt.matches("form[data-answer-form]"));
  }

  function sendAgain() {
    const form = answerForm();
    if (!retry || !form || !window.htmx) return;
    retry.timer = 0;
    window.htmx.ajax("POST", retry.path, { source: form, target: "#reader", values: retry.values });
  }

  function scheduleRetry(answer) {
    if (retry && retry.timer) window.clearTimeout(retry.timer);
    const attempt = retry && retry.path === answer.path ? retry.attempt + 1 : 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
    retry = { path: answer.path, values: answer.values, attempt, timer: 0 };
    retry.timer = window.setTimeout(sendAgain, delay * (0.8 + Math.random() * 0.4));
    connectionStatus(RETRY_MESSAGE);
  }

  document.addEventListener("htmx:configRequest", (event) => {
    if (!isAnswerRequest(event.detail)) return;
    const values = {};
    const data = event.detail.formData;
    if (data && data.forEach) data.forEach((value, name) => { values[name] = value; });
    lastAnswer = { path: event.detail.path, values };
  });

  function requestFailed(event) {
    const detail = event.detail || {};
    const status = detail.xhr ? detail.xhr.status : 0;
    const transient = event.type !== "htmx:responseError" || status === 0 || status >= 500;
    if (isAnswerRequest(detail) && lastAnswer && transient) {
      scheduleRetry(lastAnswer);
    } else if (transient) {
      connectionStatus("Connection problem: the page could not be loaded. Please try again in a moment.");
    } else {
      connectionStatus(`The server refused this request (error ${status}). Please reload the page.`);
    }
  }
  document.addEventListener("htmx:responseError", requestFailed);
  document.addEventListener("htmx:sendError", requestFailed);
  document.addEventListener("htmx:timeout", requestFailed);

  document.addEventListener("htmx:afterRequest", (event) => {
    if (!event.detail || !event.detail.successful) return;
    if (isAnswerRequest(event.detail)) {
      if (retry && retry.timer) window.clearTimeout(retry.timer);
      retry = null;
      lastAnswer = null;
    }
    if (retry === null) connectionStatus("");
  });

  document.addEventListener(
    "submit",
    (event) => {
      if (event.target.matches && event.target.matches("form[data-answer-form]")) stampClientTime(event.target);
    },
    true,
  );

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-action]");
    if (!button || !activeViewer) return;
    const action = button.dataset.action;
    if (action === "invert") activeViewer.invert();
    else if (action === "reset") activeViewer.reset();
    else if (action === "zoom-in") activeViewer.zoomBy(1.25);
    else if (action === "zoom-out") activeViewer.zoomBy(0.8);
  });

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (isTextField(target)) {
      // Shortcuts never fire while typing; Esc leaves the field.
      if (event.key === "Escape") target.blur();
      return;
    }
    const reader = document.getElementById("reader");
    if (!reader) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;

    if (key === "Enter") {
      const next = reader.querySelector("[data-continue]");
      const onControl = target && target !== document.body && target.matches("a, button, input, select, textarea");
      if (next && !onControl) {
        event.preventDefault();
        next.click();
      }
      return;
    }

    const form = answerForm();
    // No answer from the keyboard before the image is on screen, or while one is on its way,
    // nor from a held-down key, nor before the study's minimum viewing time.
    const seen = !activeViewer || activeViewer.grey !== null;
    const answerKey = key === "r" || key === "f" || key === "u" || /^[1-5]$/.test(key);
    if (form && answerKey && (event.repeat || tooSoon())) {
      event.preventDefault();
      flash(form.querySelector("fieldset.answers"));
      return;
    }
    if (form && !busy(form) && seen) {
      if (key === "r" || key === "f" || key === "u") {
        if (press(form, `[data-key="${key}"]`)) event.preventDefault();
        return;
      }
      if (/^[1-5]$/.test(key)) {
        if (press(form, `button[data-key="${key}"]`)) event.preventDefault();
        return;
      }
      if (key === "c") {
        const comment = form.querySelector("textarea[name=comment]");
        if (comment) {
          event.preventDefault();
          comment.focus();
        }
        return;
      }
    }
    if (key === "ArrowLeft" || key === "ArrowRight") {
      const link = reader.querySelector(key === "ArrowLeft" ? "[data-previous]" : "[data-forward]");
      if (link) {
        event.preventDefault();
        link.click();
      }
      return;
    }
    if (!activeViewer) return;
    const preset = WINDOW_KEYS[key];
    if (preset && activeViewer.showWindow(preset)) {
      event.preventDefault();
      return;
    }
    if (key === "i") activeViewer.invert();
    else if (key === "0") activeViewer.reset();
    else if (key === "+" || key === "=") activeViewer.zoomBy(1.25);
    else if (key === "-" || key === "_") activeViewer.zoomBy(0.8);
    else return;
    event.preventDefault();
  });

  /* ---- htmx -------------------------------------------------------------------------- */

  // A swap brings a new case: arm its viewer and take the focus off the old controls.
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target && event.target.id === "reader") {
      arm(event.target);
      const focus = event.target.querySelector("[autofocus]");
      if (focus) focus.focus();
      else if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    }
  });

  // An expired session answers with the login page: go there instead of swapping it in.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const reader = document.getElementById("reader");
    const login = reader && reader.dataset.loginUrl;
    const url = event.detail.xhr && event.detail.xhr.responseURL;
    if (login && url && new URL(url, location.href).pathname === login) {
      event.detail.shouldSwap = false;
      location.href = url;
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => arm(document));
  else arm(document);
})();
