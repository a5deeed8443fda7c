// Pair (2AFC) reading page: keyboard first. ← / → send "the synthetic one is left/right",
// number keys choose the finding, Enter continues after a practice pair. The time on the
// screen goes with the answer, measured from when both images are decoded.
(function () {
  "use strict";
  const form = document.querySelector("[data-design-form]");
  const images = Array.from(document.querySelectorAll(".pair-side img"));
  let shownAt = performance.now();
  Promise.all(images.map((img) => img.decode().catch(() => null))).then(() => {
    shownAt = performance.now();
  });
  let sent = false;
  if (form) {
    form.addEventListener("submit", (event) => {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      form.elements.client_ms.value = String(Math.round(performance.now() - shownAt));
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!form) {
      const next = document.querySelector("[data-continue]");
      if (next && event.key === "Enter") { event.preventDefault(); next.click(); }
      return;
    }
    const finding = form.querySelector(`[data-findings] input[data-key="${CSS.escape(event.key)}"]`);
    if (finding) { event.preventDefault(); finding.checked = true; return; }
    const side = form.querySelector(`button[data-key="${CSS.escape(event.key)}"]`);
    if (side) { event.preventDefault(); form.requestSubmit(side); }
  });
})();
