"""The shared foundation of the browser front ends: the console (``web.console``) and the portal.

How a front end reuses it (the provider console is the worked example, ``web/console/``):

- **Routes**: make an ``APIRouter(route_class=...)`` with a subclass of
  :class:`meterplane.web.routing.WebRoute`. Set ``session_cookie`` (the console uses
  ``mp_console``; the portal should use its own, e.g. ``mp_portal``) and, if its pages need
  more sources (Stripe.js), ``content_security_policy``. A ``WebRoute`` loads the signed
  session before the handler and saves it after, checks the CSRF token of every unsafe
  request (POST, PUT, PATCH, DELETE), adds security headers, and turns errors into HTML
  pages: ``NotFound`` → 404 page, ``Forbidden``/CSRF → 403 page, ``InvalidInput``/``Conflict``
  → the error page with the message, :class:`~meterplane.web.routing.Redirect` → 303.
- **Templates**: :func:`meterplane.web.templating.templates` returns a Jinja2 environment
  whose loader searches the given folders first, then ``web/templates``. Extend
  ``base.html``; its blocks: ``title``, ``brand`` (name in the header), ``nav`` (the
  ``<nav>`` links; empty hides the navigation), ``header_actions`` (right side of the top
  bar), ``content`` (the page), ``scripts`` (extra ``<script src>`` tags; no inline
  scripts: the CSP forbids them). ``macros.html`` (import it ``as ui with context``) has
  ``field``, ``csrf_field``, ``status_badge``, ``empty``. Render with
  :func:`meterplane.web.routing.render` (adds ``request``, ``csrf_token``, the flashed
  messages and ``static``).
- **Filters**: ``money(amount, currency)`` (babel, locale-aware), ``quantity(value)``,
  ``date(moment)``, ``datetime(moment)`` (UTC), ``minor_money(minor_units, currency)``.
- **CSRF**: every form includes ``{{ csrf_field() }}`` (from ``macros.html``); htmx sends
  the token from ``<meta name="csrf-token">`` as the ``X-CSRF-Token`` header (``app.js``).
  A missing or wrong token → 403 page. :func:`meterplane.web.sessions.csrf_token` gives it.
- **Sessions and flashes**: ``request.state.session`` is a dict saved in a signed,
  HttpOnly, SameSite=Lax cookie (Secure over https) keyed by ``METERPLANE_SECRET_KEY``;
  :func:`meterplane.web.sessions.flash` queues a message shown on the next page;
  :func:`meterplane.web.sessions.reset_session` (on login) drops the old session and
  its CSRF token.
- **Static files**: ``/static/app.css``, ``/static/app.js``; the npm packages under
  ``/static/vendor/htmx/htmx.min.js`` and ``/static/vendor/chart.js/chart.umd.min.js``
  (served from ``node_modules``, installed by ``make setup``). Charts: a ``<canvas
  data-chart="ID">`` and a ``<script type="application/json" id="ID">`` with
  ``{"type", "data", "options"}``; ``app.js`` draws it with Chart.js.
"""
