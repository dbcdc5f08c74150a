// Filters and links of the --skill-html page. No data lives here: the page's markup is
// the data, and everything below only shows or hides it.
(function () {
  "use strict";

  const all = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const cases = all("details.case");
  const state = { model: "", skill: "", outcome: "all", text: "" };

  // Lower-cased text, computed once: a case's own part (id, input, files) and each answer.
  const caseText = new Map();
  const resultText = new Map();
  for (const item of cases) {
    const own = [item.querySelector(".case-id"), item.querySelector(".case-input")];
    caseText.set(item, own.map((node) => (node ? node.textContent : "")).join("\n").toLowerCase());
    for (const result of all(".result", item)) {
      resultText.set(result, result.textContent.toLowerCase());
    }
  }

  function outcomeMatches(outcome) {
    if (state.outcome === "all") return true;
    if (state.outcome === "flipped") return outcome === "helped" || outcome === "hurt";
    return outcome === state.outcome;
  }

  function apply() {
    let shown = 0;
    for (const item of cases) {
      const skillMatches = !state.skill || item.dataset.skill === state.skill;
      const ownMatch = !state.text || caseText.get(item).includes(state.text);
      let visible = false;
      for (const result of all(".result", item)) {
        const matches =
          skillMatches &&
          (!state.model || result.dataset.model === state.model) &&
          outcomeMatches(result.dataset.outcome) &&
          (ownMatch || resultText.get(result).includes(state.text));
        result.hidden = !matches;
        visible = visible || matches;
      }
      for (const badge of all("summary [data-model]", item)) {
        badge.hidden = Boolean(state.model) && badge.dataset.model !== state.model;
      }
      item.hidden = !visible;
      if (visible) shown += 1;
    }
    for (const section of all("section.skill")) {
      section.hidden = !all("details.case", section).some((item) => !item.hidden);
    }
    const count = document.getElementById("shown-count");
    if (count) count.textContent = shown + " of " + cases.length + " cases";
  }

  function pressOutcome(value) {
    state.outcome = value;
    for (const button of all(".outcome-button")) {
      button.setAttribute("aria-pressed", String(button.dataset.outcome === value));
    }
  }

  function resetFilters() {
    state.model = state.skill = state.text = "";
    for (const id of ["filter-model", "filter-skill", "filter-text"]) {
      const control = document.getElementById(id);
      if (control) control.value = "";
    }
    pressOutcome("all");
  }

  // A link to #case-... opens that case, even when the filters had hidden it.
  function openLinkedCase() {
    const id = decodeURIComponent(window.location.hash.slice(1));
    const target = id ? document.getElementById(id) : null;
    if (!target || !target.matches("details.case")) return;
    if (target.hidden) {
      resetFilters();
      apply();
    }
    target.open = true;
    target.scrollIntoView({ block: "start" });
  }

  const model = document.getElementById("filter-model");
  const skill = document.getElementById("filter-skill");
  const text = document.getElementById("filter-text");
  if (model) model.addEventListener("change", () => { state.model = model.value; apply(); });
  if (skill) skill.addEventListener("change", () => { state.skill = skill.value; apply(); });
  if (text) {
    text.addEventListener("input", () => { state.text = text.value.trim().toLowerCase(); apply(); });
  }
  for (const button of all(".outcome-button")) {
    button.addEventListener("click", () => { pressOutcome(button.dataset.outcome); apply(); });
  }
  const expand = document.getElementById("expand-all");
  const collapse = document.getElementById("collapse-all");
  if (expand) expand.addEventListener("click", () => cases.forEach((c) => { c.open = !c.hidden; }));
  if (collapse) collapse.addEventListener("click", () => cases.forEach((c) => { c.open = false; }));
  window.addEventListener("hashchange", openLinkedCase);

  apply();
  openLinkedCase();
})();
