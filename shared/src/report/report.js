(function () {
  "use strict";
  var table = document.getElementById("mailboxes");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function value(row, key) {
    var cell = row.querySelector('td[data-key="' + key + '"]');
    return cell ? cell.getAttribute("data-v") : "";
  }
  function sortBy(key, descending) {
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, key), y = value(b, key);
      var nx = Number(x), ny = Number(y);
      var c = (x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(heads, function (h) {
      h.classList.remove("asc", "desc");
      if (h.getAttribute("data-key") === key) { h.classList.add(descending ? "desc" : "asc"); }
    });
    table.setAttribute("data-sorted", (descending ? "-" : "") + key);
  }
  Array.prototype.forEach.call(heads, function (h) {
    function click() { sortBy(h.getAttribute("data-key"), h.classList.contains("asc")); }
    h.addEventListener("click", click);
    h.addEventListener("keydown", function (e) { if (e.key === "Enter") { click(); } });
  });
  var filter = document.getElementById("filter");
  function applyFilter(text) {
    var t = text.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (r) {
      r.hidden = t !== "" && r.textContent.toLowerCase().indexOf(t) < 0;
    });
  }
  filter.addEventListener("input", function () { applyFilter(filter.value); });
  var hash = decodeURIComponent(location.hash.slice(1));
  hash.split("&").forEach(function (p) {
    var kv = p.split("=");
    if (kv[0] === "sort" && kv[1]) {
      sortBy(kv[1].replace(/^-/, ""), kv[1].charAt(0) === "-");
    } else if (kv[0] === "filter" && kv[1]) {
      filter.value = kv[1];
      applyFilter(kv[1]);
    }
  });
})();
