mod accounts;
mod customers;
mod host;
