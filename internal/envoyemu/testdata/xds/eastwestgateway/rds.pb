
recorded"<type.googleapis.com/envoy.config.route.v3.RouteConfiguration*rds