// The tour page: one framework at a time in tabs (clicking a tab shows that
// framework in every step, as the book's tabs do), or every framework side
// by side in columns.  render_html inlines this file.
window.__tourErrors = [];
window.addEventListener('error', function (e) { window.__tourErrors.push(String(e.message)); });

function showBackend(backend) {
  document.querySelectorAll('section.step').forEach(function (sec) {
    if (!sec.querySelector('.panel[data-backend="' + backend + '"]')) return;
    sec.querySelectorAll('.tabbar button').forEach(function (b) {
      b.classList.toggle('active', b.dataset.backend === backend); });
    sec.querySelectorAll('.panel').forEach(function (p) {
      p.classList.toggle('active', p.dataset.backend === backend); });
  });
}

// layout: 'tabs' or 'columns'; the toggle button shows as pressed in columns
function setLayout(layout) {
  var columns = layout === 'columns';
  document.body.classList.toggle('columns', columns);
  document.getElementById('layout-toggle').setAttribute('aria-pressed', String(columns));
}

document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('.tabbar button').forEach(function (b) {
    b.addEventListener('click', function () { showBackend(b.dataset.backend); });
  });
  document.getElementById('layout-toggle').addEventListener('click', function () {
    setLayout(document.body.classList.contains('columns') ? 'tabs' : 'columns');
  });
});
