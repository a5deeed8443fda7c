// Exposure (HYPE-time) reading page. Space starts a showing: the image is fully decoded first
// (img.decode()), then shown for the exposure the server decided (data-exposure-ms) and replaced
// by a mask. Both changes happen in requestAnimationFrame callbacks, and the time the image was
// on screen is the difference of the two frames' timestamps: that is what is sent (achieved_ms).
// The image is hidden at the first frame whose timestamp is within half a frame of the request,
// so the achieved exposure is the request rounded to the nearest frame.
(function () {
  "use strict";
  const box = document.querySelector("[data-exposure]");
  const form = document.querySelector("[data-exposure-form]");
  if (!box || !form) return;
  const img = box.querySelector("[data-exposure-image]");
  const mask = box.querySelector("[data-exposure-mask]");
  const prompt = box.querySelector("[data-exposure-start]");
  const answers = form.querySelector("[data-exposure-answers]");
  const requested = Number(box.dataset.exposureMs);
  let state = "ready";
  let maskedAt = 0;

  function paintMask() {
    mask.width = img.naturalWidth || 512;
    mask.height = img.naturalHeight || 512;
    const context = mask.getContext("2d");
    if (box.dataset.mask === "grey") {
      context.fillStyle = "rgb(128, 128, 128)";
      context.fillRect(0, 0, mask.width, mask.height);
      return;
    }
    const pixels = context.createImageData(mask.width, mask.height);
    for (let i = 0; i < pixels.data.length; i += 4) {
      const value = Math.floor(Math.random() * 256);
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = value;
      pixels.data[i + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
  }

  async function show() {
    state = "showing";
    prompt.classList.add("gone");
    try { await img.decode(); } catch (error) { /* a broken image still gets its timing */ }
    paintMask();
    let frame = 1000 / 60;
    let last = 0;
    requestAnimationFrame((start) => {
      box.classList.add("on");
      last = start;
      const tick = (now) => {
        frame = Math.min(frame, Math.max(now - last, 4));
        last = now;
        if (now - start + frame / 2 >= requested) {
          box.classList.remove("on");
          box.classList.add("masked");
          form.elements.achieved_ms.value = (now - start).toFixed(1);
          maskedAt = performance.now();
          state = "answering";
          answers.disabled = false;
          return;
        }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
  }

  form.addEventListener("submit", (event) => {
    if (state !== "answering") { event.preventDefault(); return; }
    state = "sent";
    form.elements.client_ms.value = String(Math.round(performance.now() - maskedAt));
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === " " && state === "ready") { event.preventDefault(); show(); return; }
    const finding = form.querySelector(`[data-findings] input[data-key="${CSS.escape(event.key)}"]`);
    if (finding) { event.preventDefault(); finding.checked = true; return; }
    if (state !== "answering") return;
    const button = answers.querySelector(`button[data-key="${CSS.escape(event.key.toLowerCase())}"]`);
    if (button) { event.preventDefault(); form.requestSubmit(button); }
  });
})();
