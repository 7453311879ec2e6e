// The dashboard's live updates: when the server says the farm changed (GET /live, server-sent
// events), fetch this page again and replace its live regions ([data-live] elements with an id)
// in place. A region holding a form control that has focus or has been changed (typed in,
// ticked) is left alone until it no longer does, so typing is never wiped. Without this script
// the page refreshes itself (the <noscript> meta refresh).
(function () {
  "use strict";
  var source = document.body.getAttribute("data-live");
  if (!source || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }

  function busy(region) {
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active)) {
      return true;
    }
    var controls = region.querySelectorAll("input, select, textarea");
    for (var i = 0; i < controls.length; i++) {
      var c = controls[i];
      if (c.type === "checkbox" || c.type === "radio") {
        if (c.checked !== c.defaultChecked) return true;
      } else if (c.tagName === "SELECT") {
        for (var j = 0; j < c.options.length; j++) {
          if (c.options[j].selected !== c.options[j].defaultSelected) return true;
        }
      } else if (c.type !== "hidden" && c.value !== c.defaultValue) {
        return true;
      }
    }
    return false;
  }

  var pending = false;
  var running = false;

  function update() {
    if (running) {
      pending = true;
      return;
    }
    running = true;
    pending = false;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (!answer.ok || answer.redirected) throw new Error("status " + answer.status);
        return answer.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var regions = document.querySelectorAll("[data-live][id]");
        for (var i = 0; i < regions.length; i++) {
          var region = regions[i];
          var replacement = fresh.getElementById(region.id);
          if (!replacement) continue;
          if (busy(region)) {
            pending = true; // try again at the next change or when the control is left
            continue;
          }
          region.replaceWith(document.importNode(replacement, true));
        }
        document.body.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () {
        pending = true;
      })
      .then(function () {
        running = false;
      });
  }

  var timer = null;
  function soon() {
    if (timer === null) {
      timer = window.setTimeout(function () {
        timer = null;
        update();
      }, 250);
    }
  }

  document.addEventListener("focusout", function () {
    if (pending) soon();
  });

  var status = document.getElementById("live");
  var events = new EventSource(source);
  events.addEventListener("change", soon);
  events.addEventListener("open", function () {
    if (status) status.textContent = "live";
  });
  events.addEventListener("error", function () {
    if (status) status.textContent = "reconnecting";
  });
})();
