// The log viewer: while the frame runs, fetch what is new of its log every 2 s and add its
// rows to the table (as text, never as HTML). The server says when nothing more will come.
// "Earlier lines" puts the window of lines before the first shown above them, in place.
(function () {
  "use strict";
  var table = document.getElementById("log");
  if (!table) return;
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

  function row(fields) {
    var tr = document.createElement("tr");
    if (fields.length === 3) {
      var time = fields[0].indexOf("T") > 0 ? fields[0].slice(11, 23) : fields[0];
      tr.className = "l-" + fields[1];
      cell(tr, time); cell(tr, fields[1]); cell(tr, fields[2]);
    } else {
      cell(tr, ""); cell(tr, ""); cell(tr, fields.join(","));
    }
    return tr;
  }

  function isHeader(fields) { return fields.join(",") === "time,stream,line"; }

  function add(rows) {
    var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    rows.forEach(function (fields) {
      if (!isHeader(fields)) body.appendChild(row(fields));
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

  // The window before the first line shown: the same as the link's page (whole lines).
  var earlier = document.getElementById("log-earlier");
  function loadEarlier(event) {
    event.preventDefault();
    if (earlier.dataset.loading) return;
    earlier.dataset.loading = "1";
    fetch(earlier.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) throw new Error(answer.status);
        var start = parseInt(answer.headers.get("X-Farm-Log-Start"), 10);
        return answer.arrayBuffer().then(function (data) {
          var text = new TextDecoder("utf-8").decode(data);
          var rows = parse(text.slice(-1) === "\n" || !text ? text : text + "\n")[0];
          var first = body.firstChild;
          var height = document.body.scrollHeight;
          rows.forEach(function (fields) {
            if (!isHeader(fields)) body.insertBefore(row(fields), first);
          });
          window.scrollBy(0, document.body.scrollHeight - height);  // the lines read stay put
          var empty = document.getElementById("log-empty");
          if (empty && rows.length) empty.remove();
          if (!(start > 0)) {
            document.getElementById("log-skipped").remove();
            return;
          }
          earlier.dataset.src = earlier.dataset.src.replace(/before=\d+/, "before=" + start);
          earlier.href = earlier.href.replace(/before=\d+/, "before=" + start);
          document.getElementById("log-start").textContent = start;
        });
      })
      .then(function () { delete earlier.dataset.loading; })
      .catch(function () { window.location.href = earlier.href; });  // the page it names
  }
  if (earlier) earlier.addEventListener("click", loadEarlier);

  if (!src) return;
  table.dataset.following = "1";
  setTimeout(poll, EVERY);
})();
