// PentaVision: start GraphiQL (vendored React, ReactDOM and GraphiQL, see static/vendor/) on
// /graphql with the browser's session cookie.
"use strict";

(function () {
  const root = document.getElementById("graphiql");
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    root.textContent = "GraphiQL could not start: its scripts did not load.";
    return;
  }
  const fetcher = window.GraphiQL.createFetcher({ url: "/graphql" });
  window.ReactDOM.createRoot(root).render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: "# Ask for what you need, for example:\n{\n  cameras {\n    nodes {\n      id\n      name\n      enabled\n    }\n  }\n}\n",
    }),
  );
})();
