// Loaded in <head>, not deferred: the page is styled for JavaScript before it first paints.
document.documentElement.classList.add("js");
