// The log viewer: a page of the log opens scrolled to its newest (last) lines.
document.addEventListener("DOMContentLoaded", () => {
  const lines = document.querySelector("pre.log-lines[data-scroll-end]");
  if (lines) lines.scrollTop = lines.scrollHeight;
});
