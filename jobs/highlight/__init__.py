"""The daily UMKM highlight: pick products fairly, create one post per channel per day.

* :mod:`jobs.highlight.pick`: the pick, a pure function over the eligible products and the
  past picks, so a preview, a test driving 60 days and the job itself all agree;
* :mod:`jobs.highlight.queries`: what the pick reads from the database (eligibility, past
  features, the picks already made for a day);
* :mod:`jobs.highlight.create`: the job itself, creating each day's posts exactly once,
  and keeping unsent highlight posts current when a product changes.

The service (``scheduler/service.py``) declares when the job runs; the preview and history
staff read are in ``scheduler/views.py``.
"""
