// The OAuth callback page: hand the outcome to the Storage page that opened this window
// (same origin only), then close.
(function () {
  "use strict";
  const el = document.getElementById("oauth-result");
  if (!el || !window.opener) return;
  const msg = { type: "pv-oauth", state: el.dataset.state || "" };
  if (el.dataset.refreshToken) msg.refresh_token = el.dataset.refreshToken;
  if (el.dataset.error) msg.error = el.dataset.error;
  try {
    window.opener.postMessage(msg, window.location.origin);
  } catch (e) {
    return;
  }
  if (msg.refresh_token) setTimeout(function () { window.close(); }, 800);
})();
