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

  // 郵便番号 → 住所: 7 digits (全角 or with a hyphen) fill 都道府県/市区町村/番地's town part;
  // several towns give a choice list; an unknown code or AddressAPI being down asks for manual entry.
  function postalAutofill(form) {
    var postal = form.querySelector("#f-postal_code");
    var message = form.querySelector("[data-lookup-message]");
    if (!postal || !message) return;
    var area = form.querySelector("[data-lookup-area]");
    var button = form.querySelector("[data-lookup-button]");
    var last = "";

    function digits(value) {
      return value.replace(/[\uFF10-\uFF19]/g, function (c) {
        return String.fromCharCode(c.charCodeAt(0) - 0xFEE0);
      }).replace(/[^0-9]/g, "");
    }
    function say(text) {
      message.textContent = text;
      message.hidden = !text;
    }
    function setValue(id, value) {
      var input = form.querySelector(id);
      if (input && value) input.value = value;
    }
    function fill(address) {
      setValue("#f-prefecture", address.prefecture);
      setValue("#f-city", address.city);
      var street = form.querySelector("#f-street");
      if (street && address.town && street.value.indexOf(address.town) !== 0) street.value = address.town;
      say("住所を入力しました。番地・部屋番号などを続けて入力してください。");
      if (street) street.focus();
    }
    function label(a) {
      return a.prefecture + a.city + a.town + (a.note ? "（" + a.note + "）" : "");
    }
    function choose(addresses) {
      var old = area.querySelector("[data-address-choice]");
      if (old) old.remove();
      var select = document.createElement("select");
      select.setAttribute("data-address-choice", "");
      select.setAttribute("aria-label", "該当する住所を選択");
      var first = document.createElement("option");
      first.value = "";
      first.textContent = "住所を選択してください";
      select.appendChild(first);
      addresses.forEach(function (a, i) {
        var option = document.createElement("option");
        option.value = String(i);
        option.textContent = label(a);
        select.appendChild(option);
      });
      select.addEventListener("change", function () {
        if (select.value !== "") fill(addresses[Number(select.value)]);
      });
      area.appendChild(select);
      say("この郵便番号には複数の住所があります。一覧からお選びください。");
      select.focus();
    }
    function lookup() {
      var code = digits(postal.value);
      if (code.length !== 7 || code === last) return;
      last = code;
      fetch("/api/v1/postal-codes/" + code, { headers: { Accept: "application/json" } }).then(function (response) {
        if (response.status === 200) {
          return response.json().then(function (body) {
            if (body.addresses.length === 1) fill(body.addresses[0]); else choose(body.addresses);
          });
        }
        if (response.status === 503) {
          if (button) button.hidden = true;
          say("現在、住所検索をご利用いただけません。お手数ですが、住所を直接入力してください。");
        } else {
          say("該当する住所が見つかりませんでした。郵便番号をご確認のうえ、住所を直接入力してください。");
        }
      }).catch(function () { /* offline: 住所検索 button or manual entry still work */ });
    }
    postal.addEventListener("input", lookup);
    if (button) {
      button.addEventListener("click", function (event) {
        // With the script the lookup happens in place; without it the button reloads the step.
        event.preventDefault();
        last = "";
        lookup();
      });
    }
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
    Array.prototype.forEach.call(document.querySelectorAll("form[data-inline-check]"), postalAutofill);
    Array.prototype.forEach.call(document.querySelectorAll("form[method=post]"), singleSubmit);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
