/*
 * devstack launcher for Apache Iceberg's REST catalog test-fixture server.
 *
 * Iceberg's org.apache.iceberg.rest.RESTCatalogServer (iceberg-open-api, classifier test-fixtures)
 * always listens on every interface (Jetty's Server(int port)) and logs its whole configuration,
 * secrets included. This launcher serves the same pieces -- the CATALOG_* environment mapping of
 * RCKUtils, RESTServerCatalogAdapter and RESTCatalogServlet -- but:
 *   - binds one address, CATALOG_REST_HOST (default 127.0.0.1), port CATALOG_REST_PORT (default 8181);
 *   - requires catalog-impl, uri and warehouse instead of falling back to in-memory SQLite and a temp dir;
 *   - logs the configuration keys only, never their values;
 *   - needs no Hadoop on the class path (FileIO must then be set, e.g. CATALOG_IO__IMPL=S3FileIO).
 * It lives in org.apache.iceberg.rest because those fixture classes are package-private.
 *
 * Environment mapping (RCKUtils): CATALOG_ prefix removed, "__" -> "-", "_" -> ".", lower-cased;
 * e.g. CATALOG_CATALOG__IMPL -> catalog-impl, CATALOG_JDBC_USER -> jdbc.user,
 * CATALOG_S3_PATH__STYLE__ACCESS -> s3.path-style-access.
 */
package org.apache.iceberg.rest;

import java.util.Map;
import java.util.TreeSet;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.relocated.com.google.common.collect.Maps;
import org.apache.iceberg.util.PropertyUtil;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class LoopbackRESTCatalogServer {
  private static final Logger LOG = LoggerFactory.getLogger(LoopbackRESTCatalogServer.class);
  static final String REST_HOST = "rest.host";

  private LoopbackRESTCatalogServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> config = Maps.newHashMap(RCKUtils.environmentCatalogConfig());
    for (String required :
        new String[] {CatalogProperties.CATALOG_IMPL, CatalogProperties.URI, CatalogProperties.WAREHOUSE_LOCATION}) {
      if (config.getOrDefault(required, "").isEmpty()) {
        throw new IllegalArgumentException("missing catalog property " + required + " (CATALOG_* environment)");
      }
    }
    String host = PropertyUtil.propertyAsString(config, REST_HOST, "127.0.0.1");
    int port = PropertyUtil.propertyAsInt(config, RESTCatalogServer.REST_PORT, 8181);
    String name = PropertyUtil.propertyAsString(config, RESTCatalogServer.CATALOG_NAME, "rest_backend");

    LOG.info("Creating catalog {} ({}) with property keys {}",
        name, config.get(CatalogProperties.CATALOG_IMPL), new TreeSet<>(config.keySet()));
    Catalog catalog = CatalogUtil.buildIcebergCatalog(name, config, null);
    RESTCatalogAdapter adapter =
        new RESTServerCatalogAdapter(new RESTCatalogServer.CatalogContext(catalog, config));

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.setStopAtShutdown(true);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        adapter.close();
      } catch (Exception e) {
        LOG.warn("closing the catalog failed", e);
      }
    }, "close-catalog"));

    server.start();
    LOG.info("Iceberg REST catalog listening on http://{}:{}/", host, port);
    server.join();
  }
}
