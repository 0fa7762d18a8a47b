// Swagger UI on the hub's own schema; a file of its own, as the hub's CSP runs no inline script.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // never ask an outside validator
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
