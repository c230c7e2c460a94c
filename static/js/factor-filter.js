// The activity line form: the factor list shows only the chosen category's factors. The factors are
// grouped by category (<optgroup label="交通">), so the category's label picks its group. Without this
// file every factor stays listed and the server still refuses a factor of another category.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("select[data-filter-by]"), function (factors) {
    var category = document.getElementById(factors.getAttribute("data-filter-by"));
    if (!category) { return; }
    function apply() {
      var chosen = category.options[category.selectedIndex];
      var label = chosen ? chosen.text.trim() : "";
      var firstShown = null;
      Array.prototype.forEach.call(factors.querySelectorAll("optgroup"), function (group) {
        var shown = !label || group.label.trim() === label;
        group.hidden = !shown;
        group.disabled = !shown;
        if (shown && !firstShown && group.querySelector("option")) { firstShown = group.querySelector("option"); }
      });
      var selected = factors.options[factors.selectedIndex];
      if ((!selected || (selected.parentNode.disabled)) && firstShown) {
        // A list with a blank first choice (the line's source: "as the factor says") falls back to it.
        factors.value = factors.hasAttribute("data-filter-blank") ? "" : firstShown.value;
      }
    }
    category.addEventListener("change", apply);
    apply();
  });
})();
