"use strict";
// Sortable tables without any library: click (or Enter on) a header; numbers sort best-first on
// the first click, missing values ("-") always sort last. "#sort=<column>[:asc|:desc]" in the
// address sorts the main table on load, so a link can share an order.
(function () {
  function sortTable(table, index, descending) {
    const body = table.tBodies[0];
    const header = table.tHead.rows[0].cells[index];
    const numeric = header.dataset.type === "number";
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = a.cells[index].dataset.sort;
      const y = b.cells[index].dataset.sort;
      if (x === "" || y === "") {
        return (x === "") - (y === "");
      }
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.from(table.tHead.rows[0].cells).forEach(function (th, i) {
      th.setAttribute("aria-sort", i === index ? (descending ? "descending" : "ascending") : "none");
    });
  }

  function firstDescending(th) {
    return th.dataset.type === "number" && th.dataset.better !== "lower";
  }

  function activate(table, th, index) {
    const current = th.getAttribute("aria-sort");
    const descending = current === "ascending" || (current !== "descending" && firstDescending(th));
    sortTable(table, index, descending);
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (th, index) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { activate(table, th, index); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          activate(table, th, index);
        }
      });
    });
  });

  function sortFromAddress() {
    const wanted = /^#sort=([^:]+)(?::(asc|desc))?$/.exec(decodeURIComponent(window.location.hash));
    const main = document.getElementById("leaderboard");
    if (wanted && main) {
      Array.from(main.tHead.rows[0].cells).forEach(function (th, index) {
        if (th.dataset.key === wanted[1]) {
          sortTable(main, index, wanted[2] ? wanted[2] === "desc" : firstDescending(th));
        }
      });
    }
  }
  sortFromAddress();
  window.addEventListener("hashchange", sortFromAddress);
})();
