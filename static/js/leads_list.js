// The lead list's filters fold behind "Filters" on a phone; on a wider screen they start open.
// Without this script they are open whenever a filter is set, and one click away otherwise.
(function () {
  var panel = document.getElementById("filters");
  if (panel && window.matchMedia("(min-width: 761px)").matches) panel.open = true;
})();
