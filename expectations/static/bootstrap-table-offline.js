/* A small stand-in for bootstrap-table, which Great Expectations' Data Docs load from a CDN
   (unpkg): without it their index pages stay empty offline. It fills a table from the
   {columns, data} options the page passes (cells are GX's own HTML), sorted by the page's
   sortName/sortOrder, with the page's rowAttributes and rowStyle functions, and fires
   bootstrap-table's "click-row.bs.table" event so the page's own handler follows a row's link.
   No search box, filters or paging: string commands ('resetSearch' ...) do nothing.
   Written for this project (expectations/data_docs.py ships it; docs/decisions.md 49). */
(function ($) {
  "use strict";

  function named(value) {
    return typeof value === "string" ? window[value] : value;
  }

  function sortKey(options) {
    var column = (options.columns || []).filter(function (c) {
      return c.field === options.sortName;
    })[0];
    return column && column.sortName ? column.sortName : options.sortName;
  }

  $.fn.bootstrapTable = function (options) {
    if (typeof options !== "object" || options === null) {
      return this;
    }
    return this.each(function () {
      var table = $(this).empty();
      var columns = options.columns || [];
      var rows = (options.data || []).slice();
      var key = sortKey(options);
      if (key) {
        var direction = options.sortOrder === "desc" ? -1 : 1;
        rows.sort(function (a, b) {
          return a[key] < b[key] ? -direction : (a[key] > b[key] ? direction : 0);
        });
      }
      var head = $("<tr>");
      columns.forEach(function (c) {
        head.append($("<th>").text(c.title || c.field));
      });
      table.append($("<thead>").append(head));
      var body = $("<tbody>");
      var attributes = named(options.rowAttributes);
      var style = named(options.rowStyle);
      rows.forEach(function (row, index) {
        var tr = $("<tr>");
        if (typeof attributes === "function") {
          var found = attributes(row, index) || {};
          Object.keys(found).forEach(function (name) { tr.attr(name, found[name]); });
        }
        if (typeof style === "function") {
          tr.css((style(row, index) || {}).css || {});
        }
        columns.forEach(function (c) {
          var cell = $("<td>").html(row[c.field] === undefined ? "" : row[c.field]);
          if (c.align) {
            cell.css("text-align", c.align);
          }
          tr.append(cell);
        });
        tr.on("click", function () {
          table.trigger("click-row.bs.table", [row, tr]);
        });
        body.append(tr);
      });
      table.append(body);
    });
  };
})(jQuery);
