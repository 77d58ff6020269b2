// Starts Swagger UI over the gateway's own document. A file rather than an
// inline script, so the page's CSP can forbid inline scripts.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No call to the public validator: the page talks to its origin only.
    validatorUrl: null,
    // A token typed into "Authorize" is not kept in localStorage.
    persistAuthorization: false,
    displayRequestDuration: true,
    tryItOutEnabled: false,
  });
});
