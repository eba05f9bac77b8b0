"""Jupyter notebooks as submissions: conversion to modules, staging, locations, kernel checks."""
