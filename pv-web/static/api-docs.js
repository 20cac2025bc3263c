// PentaVision: Swagger UI (vendored, see static/vendor/) over the served OpenAPI document.
// No validator badge (it would call an outside service).
"use strict";

(function () {
  const root = document.getElementById("swagger-ui");
  if (!window.SwaggerUIBundle) {
    root.textContent = "The API documentation could not start: its script did not load.";
    return;
  }
  window.SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
})();
