// The admin's "Add another" copies the empty row and renumbers its id, name and for
// attributes, but not `list`: point each new reader box at its own renumbered datalist.
"use strict";
document.addEventListener("formset:added", (event) => {
  for (const input of event.target.querySelectorAll("input[data-reader-list]")) {
    input.setAttribute("list", input.id + "-readers");
  }
});
