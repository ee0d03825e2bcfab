// normal-form-app — progressive enhancement only: every step works without this file.
// - inline checks on blur, using the server's own rules (POST /register/validate)
// - hiragana → katakana as you type in セイ/メイ
// - no double submit
(function () {
  "use strict";

  function toKatakana(text) {
    return text.replace(/[\u3041-\u3096]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) + 0x60);
    });
  }

  function showError(input, message) {
    var error = document.getElementById(input.id + "-error");
    var field = input.closest(".field");
    if (!error || !field) return;
    if (message) {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      field.classList.add("has-error");
    } else {
      error.textContent = "";
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      field.classList.remove("has-error");
    }
  }

  function inlineChecks(form) {
    var token = form.querySelector("input[name=csrf_token]");
    if (!token) return;
    var inputs = form.querySelectorAll("input[id^='f-'], select[id^='f-']");
    Array.prototype.forEach.call(inputs, function (input) {
      if (input.hasAttribute("data-kana")) {
        input.addEventListener("input", function () {
          if (input.value !== toKatakana(input.value) && !input.isComposing) {
            input.value = toKatakana(input.value);
          }
        });
        input.addEventListener("compositionend", function () {
          input.value = toKatakana(input.value);
        });
      }
      input.addEventListener("blur", function () {
        var name = input.name;
        if (name === "password" && input.value === "" && !input.required) return;
        if (input.value === "" && !input.required) { showError(input, ""); return; }
        var email = form.querySelector("[name=email]");
        var body = new URLSearchParams();
        body.set("field", name);
        body.set("value", input.value);
        if (email) body.set("email", email.value);
        fetch("/register/validate", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token.value },
          body: body.toString()
        }).then(function (response) {
          return response.ok ? response.json() : null;
        }).then(function (result) {
          if (!result) return;
          if (result.ok && name !== "password" && input.tagName !== "SELECT" && input.type !== "date" && result.value !== input.value) {
            input.value = result.value; // show the normalised value back
          }
          showError(input, result.ok ? "" : result.message);
        }).catch(function () { /* offline: the server checks on submit anyway */ });
      });
    });
  }

  function singleSubmit(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting === "1") { event.preventDefault(); return; }
      form.dataset.submitting = "1";
      var submitter = event.submitter;
      // A disabled button is not sent, so carry its name/value in a hidden field.
      if (submitter && submitter.name) {
        var carried = document.createElement("input");
        carried.type = "hidden";
        carried.name = submitter.name;
        carried.value = submitter.value;
        form.appendChild(carried);
      }
      window.setTimeout(function () {
        Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (b) { b.disabled = true; });
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-inline-check]"), inlineChecks);
    Array.prototype.forEach.call(document.querySelectorAll("form[method=post]"), singleSubmit);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
