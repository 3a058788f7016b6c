/* promo-scheduler calendar: drag a post onto another day to move it there (same time of day).
   Only a shortcut for the "Move to" form each movable post has: it fills that form's date and
   sends it, so without this script (or without a mouse) everything works the same. */
(function () {
  "use strict";
  var calendar = document.getElementById("calendar");
  if (!calendar) { return; }
  var dragged = null;
  calendar.querySelectorAll("li.chip").forEach(function (chip) {
    var form = chip.querySelector("details.move form");
    if (!form) { return; }
    chip.setAttribute("draggable", "true");
    chip.addEventListener("dragstart", function (event) {
      dragged = chip;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", chip.id);
      chip.classList.add("dragging");
    });
    chip.addEventListener("dragend", function () {
      chip.classList.remove("dragging");
      dragged = null;
    });
  });
  calendar.querySelectorAll("section.cal-day").forEach(function (day) {
    day.addEventListener("dragover", function (event) {
      if (dragged) { event.preventDefault(); day.classList.add("drop-here"); }
    });
    day.addEventListener("dragleave", function () { day.classList.remove("drop-here"); });
    day.addEventListener("drop", function (event) {
      event.preventDefault();
      day.classList.remove("drop-here");
      var chip = dragged || document.getElementById(event.dataTransfer.getData("text/plain"));
      if (!chip || !day.id || day.id.indexOf("day-") !== 0) { return; }
      var form = chip.querySelector("details.move form");
      var date = day.id.slice(4);
      if (!form || form.elements.date.value === date) { return; }
      form.elements.date.value = date;
      form.submit();
    });
  });
}());
