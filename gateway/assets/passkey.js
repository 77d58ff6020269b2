// Passkeys on the suite's pages: the one script they load (same origin, no
// framework). A form marked `data-passkey-get` signs in with a passkey
// (navigator.credentials.get), one marked `data-passkey-create` registers
// one (navigator.credentials.create); either puts the browser's answer, as
// JSON, in the form's hidden field and posts the form. The server's options
// are in the form's `data-passkey-options` attribute. Pages work without
// this script: the password and the codes never need it.
(function () {
  "use strict";

  function bytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function text(buffer) {
    var view = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < view.length; i++) s += String.fromCharCode(view[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: bytes(c.id), transports: c.transports };
    });
  }

  function requestOptions(json) {
    var o = JSON.parse(json);
    var pk = o.publicKey;
    pk.challenge = bytes(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return pk;
  }

  function creationOptions(json) {
    var o = JSON.parse(json);
    var pk = o.publicKey;
    pk.challenge = bytes(pk.challenge);
    pk.user.id = bytes(pk.user.id);
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return pk;
  }

  function extensions(credential) {
    return credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
  }

  function assertion(credential) {
    var r = credential.response;
    return JSON.stringify({
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      extensions: extensions(credential),
      response: {
        authenticatorData: text(r.authenticatorData),
        clientDataJSON: text(r.clientDataJSON),
        signature: text(r.signature),
        userHandle: r.userHandle ? text(r.userHandle) : null
      }
    });
  }

  function registration(credential) {
    var r = credential.response;
    return JSON.stringify({
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      extensions: extensions(credential),
      response: {
        attestationObject: text(r.attestationObject),
        clientDataJSON: text(r.clientDataJSON)
      }
    });
  }

  function say(form, message) {
    var note = form.querySelector("[data-passkey-note]");
    if (note) {
      note.textContent = message;
      note.hidden = false;
    }
  }

  function post(form, field, value) {
    form.querySelector("input[name='" + field + "']").value = value;
    form.submit();
  }

  if (!window.PublicKeyCredential || !navigator.credentials) return;

  document.querySelectorAll("form[data-passkey-get]").forEach(function (form) {
    var options = form.getAttribute("data-passkey-options");
    var field = form.getAttribute("data-passkey-get");
    var button = form.querySelector("button");
    var waiting = null;
    form.hidden = false;

    function get(mediation) {
      if (waiting) waiting.abort();
      waiting = new AbortController();
      var request = { publicKey: requestOptions(options), signal: waiting.signal };
      if (mediation) request.mediation = mediation;
      return navigator.credentials.get(request).then(function (credential) {
        if (credential) post(form, field, assertion(credential));
      });
    }

    // The first step offers the passkeys of the browser in the login
    // field's suggestions (conditional mediation), where it can.
    if (form.hasAttribute("data-passkey-conditional") &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) get("conditional").catch(function () {});
      });
    }
    if (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        get(null).catch(function (e) {
          if (window.console) console.warn("passkey: " + (e && e.name) + ": " + (e && e.message));
          if (e && e.name !== "AbortError") say(form, "The passkey did not answer. Try again, or use another way.");
        });
      });
    }
  });

  document.querySelectorAll("form[data-passkey-create]").forEach(function (form) {
    var options = form.getAttribute("data-passkey-options");
    var field = form.getAttribute("data-passkey-create");
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      if (form.querySelector("input[name='" + field + "']").value) return;
      event.preventDefault();
      navigator.credentials.create({ publicKey: creationOptions(options) }).then(function (credential) {
        if (credential) post(form, field, registration(credential));
      }).catch(function () {
        say(form, "No passkey was made. Try again, or with another device.");
      });
    });
  });
})();
