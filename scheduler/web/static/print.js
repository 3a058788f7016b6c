// The monthly report's Print button (shown only when script runs; Ctrl+P works without it).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print");
  if (!button) { return; }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
