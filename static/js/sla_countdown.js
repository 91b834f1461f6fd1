// SLA countdowns on the queue (/sla/queue/). The server renders the business time left
// (data-seconds, negative when overdue) and whether the agreement's calendar is open now. While it
// is open the countdown ticks every second up to the end of the current shift (data-shift-end);
// there it stops and says until when it is paused (data-resumes-label). Outside working hours
// nothing ticks at all. The words are those of sla.queue.duration_text.
(function () {
  "use strict";
  var items = Array.prototype.slice.call(
    document.querySelectorAll("[data-countdown][data-open='true']")
  );
  if (!items.length) return;
  var loaded = Date.now();

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function words(seconds, overdue) {
    if (overdue && seconds === 0) return "overdue";
    var left = Math.abs(seconds);
    var text =
      Math.floor(left / 3600) + " h " + pad(Math.floor((left % 3600) / 60)) + " min " +
      pad(left % 60) + " s";
    return seconds < 0 ? "overdue by " + text : text + " left";
  }

  function tick() {
    var now = Date.now();
    items = items.filter(function (el) {
      var end = Date.parse(el.dataset.shiftEnd);
      var ran = Math.floor((Math.min(now, end) - loaded) / 1000);
      var left = parseInt(el.dataset.seconds, 10) - ran;
      var overdue = left < 0 || el.dataset.overdue === "true";
      el.querySelector(".countdown-time").textContent = words(left, overdue);
      el.classList.toggle("overdue", overdue);
      if (now < end) return true;
      // the shift is over: business time stands still until the next one
      el.dataset.open = "false";
      el.classList.add("paused");
      el.querySelector(".countdown-state").textContent =
        "paused until " + el.dataset.resumesLabel + " (outside working hours)";
      return false;
    });
    if (!items.length) clearInterval(timer);
  }

  var timer = setInterval(tick, 1000);
})();
