// Follow the Airflow UI's colour mode: the page is a same-origin iframe, so it can read the parent's <html> class.
(function () {
  function follow() {
    var mine = document.documentElement;
    try {
      var theirs = window.parent && window.parent !== window ? window.parent.document.documentElement : null;
      if (!theirs) return;
      var dark = theirs.classList.contains("dark") || theirs.style.colorScheme === "dark";
      mine.classList.toggle("dark", dark);
      mine.classList.toggle("light", !dark);
    } catch (e) { /* another origin: keep prefers-color-scheme */ }
  }
  follow();
  try {
    if (window.parent !== window) {
      new MutationObserver(follow).observe(window.parent.document.documentElement, { attributes: true, attributeFilter: ["class", "style"] });
    }
  } catch (e) { /* another origin */ }
})();
