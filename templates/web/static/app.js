// CaseConsultant review app: the queue refreshes in place; the ticket page previews the
// reply as you type and says who else has the ticket open. Nothing else needs scripts.
"use strict";

function csrf() {
  return document.body.dataset.csrf || "";
}

async function postJson(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(payload || {}),
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function refreshQueue(box) {
  setInterval(async () => {
    const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
    if (response.ok) box.innerHTML = await response.text();
  }, 15000);
}

function livePreview(form) {
  const body = form.querySelector("#body");
  let timer = null;
  const update = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const cc = [...form.querySelectorAll('input[name="cc"]:checked')].map((box) => box.value);
      try {
        const shown = await postJson(form.dataset.preview, { body: body.value, cc });
        document.getElementById("preview-to").textContent = shown.to.join(", ");
        document.getElementById("preview-cc").textContent = shown.cc.join(", ");
        document.getElementById("preview-subject").textContent = shown.subject;
        document.getElementById("preview-text").textContent = shown.text;
        document.getElementById("preview-html").srcdoc = shown.html;
      } catch (error) {
        console.warn(error);
      }
    }, 300);
  };
  body.addEventListener("input", update);
  form.querySelectorAll('input[name="cc"]').forEach((box) => box.addEventListener("change", update));
}

function presence(note) {
  const beat = async () => {
    try {
      const found = await postJson(note.dataset.url);
      note.textContent = found.others.length ? `Also open by ${found.others.join(", ")}.` : "";
      note.classList.toggle("hidden", found.others.length === 0);
    } catch (error) {
      console.warn(error);
    }
  };
  setInterval(beat, 20000);
}

document.addEventListener("DOMContentLoaded", () => {
  const queue = document.getElementById("queue");
  if (queue) refreshQueue(queue);
  const answer = document.getElementById("answer");
  if (answer && document.getElementById("preview")) livePreview(answer);
  const note = document.getElementById("presence");
  if (note) presence(note);
});
