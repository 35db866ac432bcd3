-- One database per service (SPEC): each service migrates its own on start.
CREATE DATABASE bitfolio_price;
CREATE DATABASE bitfolio_portfolio;
CREATE DATABASE bitfolio_gateway;
