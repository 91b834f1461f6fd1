// The lead page's move form: only the chosen move's reasons, and the deal value only for the moves
// that take one. Without this script every group shows and the server still checks the reason.
(function () {
  var move = document.getElementById("id_to");
  if (!move) return;
  var reason = document.getElementById("id_reason");
  var groups = reason ? Array.prototype.slice.call(reason.querySelectorAll("optgroup")) : [];
  function show() {
    var chosen = move.value;
    var label = move.options[move.selectedIndex] ? move.options[move.selectedIndex].text : "";
    document.querySelectorAll(".move-form [data-for-moves]").forEach(function (field) {
      field.hidden = field.dataset.forMoves.split(" ").indexOf(chosen) < 0;
    });
    if (!reason) return;
    var kept = reason.value;
    groups.forEach(function (group) { if (group.parentNode) reason.removeChild(group); });
    groups.forEach(function (group) { if (group.label === label) reason.appendChild(group); });
    reason.value = kept;
    if (reason.value !== kept) reason.value = "";
  }
  move.addEventListener("change", show);
  show();
})();
