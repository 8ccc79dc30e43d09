// Small behaviours that htmx does not cover. No business rules live here.
(function () {
  "use strict";

  function showToast(message) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function () { toast.hidden = true; }, 6000);
  }

  // Confirmation for destructive buttons, with or without htmx.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // 閉じる in dialogs: remove the dialog markup htmx put on the page.
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.remove();
    }
  });

  // Opening a run dialog from the サブメニュー closes the menu.
  document.addEventListener("click", function (event) {
    var item = event.target.closest(".submenu-item");
    if (item) {
      var menu = item.closest("details");
      if (menu) menu.open = false;
    }
  });

  // When a run finishes while its record list is on screen, refresh the list: レコード更新 may have changed it.
  document.addEventListener("htmx:load", function (event) {
    var element = event.detail.elt;
    if (element.matches && element.matches(".run-progress[data-final]") && document.getElementById("records")) {
      htmx.ajax("GET", window.location.href, { target: "#records" });
    }
  });

  // A table box that scrolls sideways says on which side more of it is hidden (app.css fades that edge).
  function markHidden(box) {
    var more = [];
    if (box.scrollLeft > 1) more.push("left");
    if (box.scrollLeft + box.clientWidth < box.scrollWidth - 1) more.push("right");
    if (more.length) box.setAttribute("data-more", more.join(" "));
    else box.removeAttribute("data-more");
  }
  function markAllHidden() { document.querySelectorAll(".table-scroll").forEach(markHidden); }
  document.addEventListener("scroll", function (event) {
    if (event.target.classList && event.target.classList.contains("table-scroll")) markHidden(event.target);
  }, true);
  document.addEventListener("DOMContentLoaded", markAllHidden);
  document.addEventListener("htmx:load", markAllHidden);
  window.addEventListener("resize", markAllHidden);

  // The left panel is a popover on a phone (base.html): it closes when htmx navigates from it and when the
  // window becomes wide enough to show it as a column again.
  function closePanel() {
    var panel = document.getElementById("leftpanel");
    if (panel && panel.hidePopover && panel.matches(":popover-open")) panel.hidePopover();
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.closest && event.target.closest("#leftpanel")) closePanel();
  });
  window.matchMedia("(min-width: 801px)").addEventListener("change", closePanel);

  // The message of the server's error page (error.html) when there is one: it says what was wrong.
  function serverMessage(xhr) {
    if (!/text\/html/.test(xhr.getResponseHeader("Content-Type") || "")) return "";
    var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var message = page.querySelector(".error-page .error-message");
    return message ? message.textContent.trim() : "";
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var fromServer = serverMessage(event.detail.xhr);
    if (fromServer) {
      showToast(fromServer);
      return;
    }
    var messages = {
      400: "送信内容に誤りがあるか、画面の有効期限が切れました。再読み込みしてください。",
      403: "この操作を行う権限がありません。",
      404: "データが見つかりません。削除された可能性があります。",
      500: "システムエラーが発生しました。時間をおいて再度お試しください。"
    };
    showToast(messages[status] || ("エラーが発生しました(" + status + ")"));
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("サーバーに接続できません。ネットワークを確認してください。");
  });
})();
