"""mod_wsgi-rs, installed with pip: the Apache module and its engine are in
``mod_wsgi_rs.server``; ``mod_wsgi-express`` (on the environment's PATH) runs an application
under Apache or prints the lines for an existing Apache (``module-config``)."""
