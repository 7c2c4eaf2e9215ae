// Client-side search over window.SEARCH_INDEX (a script, not fetched JSON, so file:// works).
(function () {
  var root = document.body.getAttribute("data-root") || "";
  var index = window.SEARCH_INDEX || [];
  var box = document.getElementById("search");
  var list = document.getElementById("search-results");
  function item(entry) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = root + entry.u; a.textContent = entry.t;
    li.appendChild(a);
    return li;
  }
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    list.innerHTML = "";
    if (!words.length) { return; }
    index.filter(function (e) {
      var text = (e.t + " " + e.x).toLowerCase();
      return words.every(function (w) { return text.indexOf(w) >= 0; });
    }).slice(0, 30).forEach(function (e) { list.appendChild(item(e)); });
  });
  var all = document.getElementById("all-pages");
  if (all) { index.forEach(function (e) { all.appendChild(item(e)); }); }
})();
