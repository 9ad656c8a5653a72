//! zoo.cfg.

pub mod properties;
