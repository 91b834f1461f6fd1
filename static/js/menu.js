// On a phone the navigation folds behind a "Menu" button (static/css/nav.css). Without this
// script the button stays hidden and the links wrap under the brand, as on a narrow window.
(function () {
  var button = document.querySelector(".topbar .menu-button");
  if (!button) return;
  var bar = button.closest(".topbar");
  bar.classList.add("menu-ready");
  button.hidden = false;
  button.addEventListener("click", function () {
    var open = bar.classList.toggle("nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("nav-open")) {
      bar.classList.remove("nav-open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
})();
