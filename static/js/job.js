// Job page: keep the live log scrolled to its newest line, unless the reader scrolled up.
(function () {
  "use strict";
  let followLog = true;

  function logOf(root) {
    return root ? root.querySelector(".job-log") : null;
  }

  function follow(root) {
    const log = logOf(root);
    if (log && followLog) {
      log.scrollTop = log.scrollHeight;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    follow(document.getElementById("job-live"));
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const log = logOf(event.detail.target);
    if (log) {
      followLog = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    }
  });

  document.body.addEventListener("htmx:afterSettle", function () {
    follow(document.getElementById("job-live"));
  });
})();
