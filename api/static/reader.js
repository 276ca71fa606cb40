// The reading page: the paper's PDF in pdf.js (served by kb, offline), opened at the page of
// the passage that matched, with the passage's query terms highlighted on that page.
import * as pdfjsLib from "/static/pdfjs/build/pdf.min.mjs";

globalThis.pdfjsLib = pdfjsLib; // pdf_viewer.mjs reads the library from here
const { EventBus, PDFFindController, PDFLinkService, PDFViewer } = await import(
  "/static/pdfjs/web/pdf_viewer.mjs"
);

const box = document.getElementById("reader");
const status = document.getElementById("reader-status");
const messages = JSON.parse(document.getElementById("kb-messages").textContent);
const say = (key, n) => {
  status.textContent = (messages[key] || key).replace("{n}", n);
};
const page = Math.max(1, parseInt(box.dataset.page, 10) || 1);
const terms = JSON.parse(box.dataset.find || "[]");

pdfjsLib.GlobalWorkerOptions.workerSrc = "/static/pdfjs/build/pdf.worker.min.mjs";
const eventBus = new EventBus();
const linkService = new PDFLinkService({ eventBus });
const findController = new PDFFindController({ eventBus, linkService });
const viewer = new PDFViewer({ container: box, eventBus, linkService, findController });
linkService.setViewer(viewer);

let reported = false;
eventBus.on("pagesinit", () => {
  viewer.currentScaleValue = "page-width";
  viewer.currentPageNumber = Math.min(page, viewer.pagesCount);
  if (!terms.length) {
    say("reader.page_of", viewer.currentPageNumber);
    return;
  }
  // the search starts on the current page, so the first match shown is on (or after) it
  eventBus.dispatch("find", {
    source: null, type: "", query: terms, caseSensitive: false, entireWord: false,
    highlightAll: true, findPrevious: false, matchDiacritics: false,
  });
});
eventBus.on("updatefindcontrolstate", (e) => {
  if (reported || e.state === 3) return; // FindState: 0 found, 1 not found, 2 wrapped, 3 pending
  reported = true;
  const found = e.state === 0 || e.state === 2;
  box.dataset.found = found ? "yes" : "no";
  say(found ? "reader.found" : "reader.not_found", viewer.currentPageNumber);
});

try {
  const doc = await pdfjsLib.getDocument({
    url: box.dataset.pdf,
    cMapUrl: "/static/pdfjs/cmaps/",
    cMapPacked: true,
    standardFontDataUrl: "/static/pdfjs/standard_fonts/",
    wasmUrl: "/static/pdfjs/wasm/",
  }).promise;
  viewer.setDocument(doc);
  linkService.setDocument(doc, null);
} catch (err) {
  say("reader.failed", "");
  box.dataset.failed = String(err && err.message ? err.message : err);
}
