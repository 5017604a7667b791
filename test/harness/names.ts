export const TEMPLATE_DB = 'walflow_test_template';
