// A client of normal-form-app's JSON API, as a native app would be: it keeps the flow's bearer
// token in memory, renders each step from the field definitions the API returns, and shows the
// API's Japanese messages. No build step, no framework.
(function () {
  "use strict";
  var form = document.getElementById("form");
  var summary = document.getElementById("summary");
  var token = null;
  var flow = null;
  // Where the API is: ?api=URL, by default a local `cargo run -- serve`.
  var base = (new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8080").replace(/\/$/, "");
  document.getElementById("api").textContent = base;

  function api(method, path, body, extraHeaders) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    return fetch(base + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (response) {
        return response.json().then(function (json) { return { status: response.status, body: json }; });
      });
  }

  function field(def, value) {
    var wrap = document.createElement("div");
    var label = document.createElement("label");
    label.htmlFor = "f-" + def.name;
    label.textContent = def.label;
    var input;
    if (def.type === "select") {
      input = document.createElement("select");
      [""].concat(def.options).forEach(function (o) {
        var option = document.createElement("option");
        option.value = o;
        option.textContent = o || "選択してください";
        input.appendChild(option);
      });
    } else {
      input = document.createElement("input");
      input.type = def.type === "checkbox" ? "checkbox" : def.type;
    }
    input.id = "f-" + def.name;
    input.name = def.name;
    if (def.type !== "checkbox" && def.type !== "password") input.value = value || "";
    var error = document.createElement("p");
    error.className = "error";
    error.id = "f-" + def.name + "-error";
    wrap.appendChild(label);
    wrap.appendChild(input);
    wrap.appendChild(error);
    return wrap;
  }

  function render(step) {
    form.innerHTML = "";
    summary.textContent = "";
    var heading = document.createElement("h2");
    heading.textContent = step.title;
    form.appendChild(heading);
    if (step.id === "plan") {
      return api("GET", "/api/v1/flows/current/plans").then(function (r) {
        r.body.plans.forEach(function (p) {
          var div = document.createElement("div");
          div.className = "plan";
          div.innerHTML = "<label><input type=radio name=plan_id></label>";
          var radio = div.querySelector("input");
          radio.value = p.id;
          radio.disabled = !p.selectable;
          radio.checked = flow.values.plan_id === p.id;
          div.querySelector("label").appendChild(document.createTextNode(" " + p.name + "（" + p.price_label + "・" + p.stock_label + "）"));
          form.appendChild(div);
        });
        addButton("次へ");
      });
    }
    step.fields.forEach(function (def) { form.appendChild(field(def, flow.values[def.name])); });
    addButton(step.id === "confirm" ? "登録する" : "次へ");
    return Promise.resolve();
  }

  function addButton(text) {
    var button = document.createElement("button");
    button.type = "submit";
    button.textContent = text;
    form.appendChild(button);
  }

  function show(body) {
    flow = body;
    var next = body.steps.filter(function (s) { return s.id === body.next_step; })[0];
    if (next) render(next);
  }

  function showErrors(problem) {
    summary.textContent = problem.detail || problem.title;
    (problem.errors || []).forEach(function (e) {
      var slot = document.getElementById("f-" + e.field + "-error");
      if (slot) slot.textContent = e.message;
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var step = flow.next_step;
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (el.type === "radio") { if (el.checked) values[el.name] = el.value; return; }
      values[el.name] = el.type === "checkbox" ? el.checked : el.value;
    });
    var request = step === "confirm"
      ? api("POST", "/api/v1/flows/current/submit", values, { "Idempotency-Key": flow.flow_id + "-submit" })
      : api("PUT", "/api/v1/flows/current/steps/" + step, values);
    request.then(function (r) {
      if (r.status === 201 || (r.status === 200 && r.body.registration_number)) {
        form.hidden = true;
        document.getElementById("number").textContent = r.body.registration_number;
        document.getElementById("done").hidden = false;
      } else if (r.status === 200) {
        show(r.body);
      } else {
        showErrors(r.body);
      }
    });
  });

  api("POST", "/api/v1/flows").then(function (r) {
    token = r.body.token;
    show(r.body);
  });
})();
