// @ts-check
// A page that has not started within 20 s — a request that never answered, a module that did
// not load on a poor line or a busy PC — says so and loads itself again, at most three times in
// a row (counted for this tab); then it asks for a manual reload. The page's own module calls
// `diemcauBooted()` once it has drawn itself, before it asks for the camera (a prompt a person
// takes time over is not a failed start). The bridge writes this file into each page's HTML
// (src/http/boot.rs), so it runs whenever the document arrived, even if no script file can load.
(function () {
  const KEY = "diemcau.reloads";
  let started = false;
  /** @type {any} */ (window).diemcauBooted = () => {
    started = true;
    sessionStorage.removeItem(KEY);
  };
  setTimeout(() => {
    if (started) return;
    const tries = Number(sessionStorage.getItem(KEY) || 0);
    const status = document.getElementById("status");
    if (tries >= 3) {
      if (status) status.textContent = "Không tải được trang. Kiểm tra mạng rồi tải lại (F5). / The page could not load: check the network, then reload (F5).";
      return;
    }
    sessionStorage.setItem(KEY, String(tries + 1));
    if (status) status.textContent = "Trang chưa tải xong, đang tải lại… / The page did not finish loading; reloading…";
    console.warn(`the page did not start within 20 s; reloading (${tries + 1} of 3)`);
    location.reload();
  }, 20000);
})();
