"""Panel dashboards: job list and job detail pages served by ``panel serve``.

``pages/`` holds one module per page (the file name is the URL path);
``data`` is the only module that talks to the database; ``units`` turns
stored SI values into what people read; ``layout`` gives every page the
same template and navigation. Start them with ``python -m dashboards.serve``.
"""
