// The log viewer: while the frame runs, fetch what is new of its log every 2 s and add its
// rows to the table (as text, never as HTML). The server says when nothing more will come.
(function () {
  "use strict";
  var table = document.getElementById("log");
  if (!table || !table.dataset.src) return;
  var body = table.tBodies[0];
  var src = table.dataset.src;
  var offset = parseInt(table.dataset.offset, 10) || 0;
  var decoder = new TextDecoder("utf-8");
  var pending = "";
  var EVERY = 2000;

  // The rows of complete CSV records in text (RFC 4180: quoted fields may hold commas,
  // quotes doubled, CR); returns [rows, the rest after the last complete record].
  function parse(text) {
    var rows = [], row = [], field = "", quoted = false, start = 0, i, c;
    for (i = 0; i < text.length; i++) {
      c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') { field += '"'; i++; } else { quoted = false; }
        } else { field += c; }
      } else if (c === '"') { quoted = true; }
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\r") { /* the record's end is its \n */ }
      else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; start = i + 1; }
      else { field += c; }
    }
    return [rows, text.slice(start)];
  }

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }

  function add(rows) {
    var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    rows.forEach(function (fields) {
      if (fields.join(",") === "time,stream,line") return;
      var tr = document.createElement("tr");
      if (fields.length === 3) {
        var time = fields[0].indexOf("T") > 0 ? fields[0].slice(11, 23) : fields[0];
        tr.className = "l-" + fields[1];
        cell(tr, time); cell(tr, fields[1]); cell(tr, fields[2]);
      } else {
        cell(tr, ""); cell(tr, ""); cell(tr, fields.join(","));
      }
      body.appendChild(tr);
    });
    if (rows.length) {
      var empty = document.getElementById("log-empty");
      if (empty) empty.remove();
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    }
  }

  function ended() {
    var status = document.getElementById("log-status");
    if (status) {
      status.textContent = "ended";
      status.className = "pill";
    }
  }

  function poll() {
    fetch(src + "&offset=" + offset, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) throw new Error(answer.status);
        var running = answer.headers.get("X-Farm-Log-Running") === "1";
        return answer.arrayBuffer().then(function (data) {
          offset += data.byteLength;
          var parsed = parse(pending + decoder.decode(data, { stream: true }));
          pending = parsed[1];
          add(parsed[0]);
          if (running) setTimeout(poll, EVERY);
          else ended();
        });
      })
      .catch(function () { setTimeout(poll, EVERY * 2); });
  }

  table.dataset.following = "1";
  setTimeout(poll, EVERY);
})();
